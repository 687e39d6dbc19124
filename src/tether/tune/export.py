"""Decisions as training data in TRL's conversational formats, written as JSON Lines.

Three datasets come out of a checkpoint database:

* ``pairs`` (preference: DPO, reward models) — ``{"prompt": [...], "chosen": [...],
  "rejected": [...], "meta": {...}}``. From each edit (chosen: the new version); from a reply
  one rater rejected and another reply to the same prompt the same rater approved or wrote;
  and from two replies to the same prompt that one rater scored differently (higher wins).
* ``sft`` (supervised) — ``{"prompt": [...], "completion": [...], "meta": {...}}``: replies
  approved unchanged, and (``sft_from_edits``) the new version of each edit.
* ``unpaired`` (binary verdicts, TRL's unpaired preference format for KTO) —
  ``{"prompt", "completion", "label": true|false, "meta"}``: approvals and edits' new versions
  are ``true``; rejections and edited-away versions ``false``.

Messages are ``{"role": "system"|"user"|"assistant"|"tool", "content": str}``; an assistant
message with tool calls adds ``"tool_calls": [{"id", "type": "function", "function": {"name",
"arguments": <JSON text>}}]`` and a tool message adds ``"tool_call_id"`` (arguments are JSON
text so every row has the same column types when loaded with ``datasets``).

``meta`` traces each record to the moment a person made it: ``thread_id``, ``checkpoint_ns``,
``checkpoint_id`` (where the decision was committed; ``tether show DB THREAD --checkpoint
ID`` shows the state there), ``created_at``, ``rater``, ``machine``, ``source`` (``edit``,
``approval``, ``rejection``, ``rejection+approval``, ``scores``), ``origin`` (``update_state``,
``interrupt``, ``breakpoint``, ``feedback``), ``message_id``, ``reason``,
``other_checkpoint_id`` (the second decision of a derived pair), ``scores`` and ``flags``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from tether.tune.decisions import Decision, OnError, SkippedThread, scan_decisions
from tether.tune.hygiene import (
    DEFAULT_MAX_MACHINE_SHARE,
    DEFAULT_NEAR_DUPLICATE_THRESHOLD,
    HygieneReport,
    clean,
    normalize,
)

__all__ = ["DATASETS", "ExportResult", "build_datasets", "export_preferences", "to_chat"]

DATASETS = ("pairs", "sft", "unpaired")
Record = dict[str, Any]


def to_chat(message: BaseMessage) -> dict[str, Any]:
    """A message as ``{"role", "content"}`` (plus ``tool_calls``/``tool_call_id`` when it has them)."""
    if isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, ToolMessage):
        role = "tool"
    else:
        role = message.role
    out: dict[str, Any] = {"role": role, "content": message.text}
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.get("id"),
                "type": "function",
                "function": {
                    "name": call.get("name"),
                    "arguments": json.dumps(call.get("args", {}), ensure_ascii=False, sort_keys=True),
                },
            }
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    return out


def _prompt(decision: Decision, system_prompt: str | None) -> list[dict[str, Any]]:
    messages = [to_chat(m) for m in decision.prompt]
    if system_prompt and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _meta(decision: Decision, source: str, **extra: Any) -> dict[str, Any]:
    meta = {
        "thread_id": decision.thread_id,
        "checkpoint_ns": decision.checkpoint_ns,
        "checkpoint_id": decision.checkpoint_id,
        "created_at": decision.created_at,
        "rater": decision.rater,
        "machine": decision.machine,
        "source": source,
        "origin": decision.origin,
        "message_id": decision.message_id,
        "reason": decision.reason,
        "other_checkpoint_id": None,
        "scores": None,
        "flags": [],
    }
    meta.update(extra)
    return meta


def _reply_key(message: AIMessage) -> str:
    return json.dumps(_texts_of(message), ensure_ascii=False)


def _texts_of(message: BaseMessage) -> list[Any]:
    calls = [[c.get("name"), c.get("args")] for c in message.tool_calls] if isinstance(message, AIMessage) else []
    return [normalize(message.text), calls]


def _prompt_key(decision: Decision) -> str:
    return json.dumps([[m.role, *_texts_of(m)] for m in decision.prompt], ensure_ascii=False, default=str)


def build_datasets(
    decisions: Iterable[Decision], *, system_prompt: str | None = None, sft_from_edits: bool = True
) -> dict[str, list[Record]]:
    """The ``pairs``, ``sft`` and ``unpaired`` records for ``decisions`` (before hygiene)."""
    pairs: list[Record] = []
    sft: list[Record] = []
    unpaired: list[Record] = []
    winners: dict[tuple[str, str], list[tuple[Decision, AIMessage]]] = {}
    losers: dict[tuple[str, str], list[Decision]] = {}
    scores: dict[tuple[str, str], dict[str, Decision]] = {}
    for d in decisions:
        group = (d.rater, _prompt_key(d))
        prompt = _prompt(d, system_prompt)
        if d.kind == "edit":
            assert d.edited is not None
            chosen, rejected = [to_chat(d.edited)], [to_chat(d.output)]
            pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "meta": _meta(d, "edit")})
            if sft_from_edits:
                sft.append({"prompt": prompt, "completion": chosen, "meta": _meta(d, "edit")})
            unpaired.append({"prompt": prompt, "completion": chosen, "label": True, "meta": _meta(d, "edit")})
            unpaired.append({"prompt": prompt, "completion": rejected, "label": False, "meta": _meta(d, "edit")})
            winners.setdefault(group, []).append((d, d.edited))
        elif d.kind == "approval":
            completion = [to_chat(d.output)]
            sft.append({"prompt": prompt, "completion": completion, "meta": _meta(d, "approval")})
            unpaired.append({"prompt": prompt, "completion": completion, "label": True, "meta": _meta(d, "approval")})
            winners.setdefault(group, []).append((d, d.output))
        elif d.kind == "rejection":
            completion = [to_chat(d.output)]
            unpaired.append({"prompt": prompt, "completion": completion, "label": False, "meta": _meta(d, "rejection")})
            losers.setdefault(group, []).append(d)
        elif d.kind == "score":
            scores.setdefault(group, {})[_reply_key(d.output)] = d  # a later score of the same reply replaces
    # a rejected reply and a reply the same rater accepted, for the same prompt
    for group, rejected_ones in losers.items():
        for loser in rejected_ones:
            for winner, reply in winners.get(group, []):
                if _reply_key(reply) == _reply_key(loser.output):
                    continue
                pairs.append(
                    {
                        "prompt": _prompt(winner, system_prompt),
                        "chosen": [to_chat(reply)],
                        "rejected": [to_chat(loser.output)],
                        "meta": _meta(
                            winner,
                            "rejection+approval",
                            other_checkpoint_id=loser.checkpoint_id,
                            reason=loser.reason,
                        ),
                    }
                )
    # two replies to one prompt that one rater scored differently
    for scored in scores.values():
        ranked = sorted(scored.values(), key=lambda d: (-(d.score or 0.0), d.created_at))
        for i, high in enumerate(ranked):
            for low in ranked[i + 1 :]:
                if (high.score or 0.0) <= (low.score or 0.0):
                    continue
                pairs.append(
                    {
                        "prompt": _prompt(high, system_prompt),
                        "chosen": [to_chat(high.output)],
                        "rejected": [to_chat(low.output)],
                        "meta": _meta(
                            high, "scores", other_checkpoint_id=low.checkpoint_id, scores=[high.score, low.score]
                        ),
                    }
                )
    return {"pairs": pairs, "sft": sft, "unpaired": unpaired}


@dataclass(kw_only=True, slots=True)
class ExportResult:
    """What ``export_preferences`` found, cleaned and wrote."""

    paths: dict[str, Path]
    written: dict[str, int]
    decisions: dict[str, int]  # by kind
    origins: dict[str, int]  # by origin
    threads: int
    feedback_rows: int
    feedback_unmatched: int  # rows whose checkpoint or reply is no longer in the database
    hygiene: HygieneReport
    skipped: list[SkippedThread] = field(default_factory=list)  # threads left out: a row could not be read
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "paths": {k: str(v) for k, v in self.paths.items()},
            "written": dict(self.written),
            "decisions": dict(self.decisions),
            "origins": dict(self.origins),
            "threads": self.threads,
            "feedback_rows": self.feedback_rows,
            "feedback_unmatched": self.feedback_unmatched,
            "hygiene": self.hygiene.to_dict(),
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": list(self.notes),
        }


def default_paths(out: str | Path) -> dict[str, Path]:
    """``prefs.jsonl`` → pairs there, ``prefs.sft.jsonl`` and ``prefs.unpaired.jsonl`` beside it."""
    out = Path(out)
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.stem
    return {
        "pairs": out,
        "sft": out.with_name(f"{stem}.sft.jsonl"),
        "unpaired": out.with_name(f"{stem}.unpaired.jsonl"),
    }


def write_jsonl(path: Path, records: Sequence[Record]) -> None:
    """Write one JSON object a line, replacing ``path`` only once all of it is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def export_preferences(
    db: Any,
    out: str | Path,
    *,
    sft_out: str | Path | None = None,
    unpaired_out: str | Path | None = None,
    threads: Sequence[str] | None = None,
    breakpoints: Sequence[str] = (),
    messages_key: str = "messages",
    system_prompt: str | None = None,
    sft_from_edits: bool = True,
    near_duplicate_threshold: float | None = DEFAULT_NEAR_DUPLICATE_THRESHOLD,
    max_machine_share: float = DEFAULT_MAX_MACHINE_SHARE,
    drop_contradictions: bool = False,
    on_error: OnError = "skip",
) -> ExportResult:
    """Find the decisions in ``db``, clean them, and write the three datasets as JSON Lines.

    ``db`` is a store (``SqliteSaver``/``PostgresSaver``), a compiled graph using one, a SQLite
    path or a ``postgresql://`` URL; it is only read. ``out`` receives the pairs; the others go
    beside it (``prefs.sft.jsonl``, ``prefs.unpaired.jsonl``) unless ``sft_out``/``unpaired_out``
    say otherwise. ``breakpoints``, ``messages_key``: see ``find_decisions``. ``system_prompt``
    is put first in every prompt that has no system message (an agent's prompt is not part of
    its stored state).

    A thread with a row that cannot be read is left out and listed in ``result.skipped`` with
    the checkpoint and the reason (``on_error="skip"``, the default: one damaged thread does not
    stop the export of the others, and no thread is half exported); with ``on_error="fail"``
    it raises ``UnreadableThreadError`` naming them, and no file is written.
    """
    from tether.tune.feedback import list_feedback, opened_store

    paths = default_paths(out)
    if sft_out is not None:
        paths["sft"] = Path(sft_out)
    if unpaired_out is not None:
        paths["unpaired"] = Path(unpaired_out)
    with opened_store(db) as saver:
        rows = list_feedback(saver)
        scan = scan_decisions(
            saver, threads=threads, messages_key=messages_key, breakpoints=breakpoints, on_error=on_error
        )
        decisions = scan.decisions
        thread_count = len({s.thread_id for s in saver.threads() if threads is None or s.thread_id in threads})
    if threads is not None:
        rows = [r for r in rows if r.thread_id in threads]
    datasets = build_datasets(decisions, system_prompt=system_prompt, sft_from_edits=sft_from_edits)
    cleaned, report = clean(
        datasets,
        near_duplicate_threshold=near_duplicate_threshold,
        max_machine_share=max_machine_share,
        drop_contradictions=drop_contradictions,
    )
    for name in DATASETS:
        write_jsonl(paths[name], cleaned[name])
    kinds: dict[str, int] = {}
    origins: dict[str, int] = {}
    for d in decisions:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
        origins[d.origin] = origins.get(d.origin, 0) + 1
    result = ExportResult(
        paths=paths,
        written={name: len(cleaned[name]) for name in DATASETS},
        decisions=kinds,
        origins=origins,
        threads=thread_count,
        feedback_rows=len(rows),
        feedback_unmatched=len(rows) - origins.get("feedback", 0),
        hygiene=report,
        skipped=scan.skipped,
    )
    if scan.skipped:
        result.notes.append(
            f"{len(scan.skipped)} thread(s) left out because a row could not be read (listed under skipped); "
            "--on-error fail stops the export instead"
        )
    if not decisions:
        result.notes.append(
            "no decisions found: people decide with update_state, by answering interrupt(), or with "
            "record_feedback; with interrupt_before breakpoints, name the nodes with --breakpoint"
        )
    if report.contradictions and not drop_contradictions:
        result.notes.append("contradicting pairs are kept, flagged in meta.flags; --drop-contradictions removes them")
    return result
