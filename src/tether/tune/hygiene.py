"""Cleaning preference data before training, and saying what was removed.

``clean`` takes the exported datasets (lists of records with ``prompt`` and ``chosen``/
``rejected`` or ``completion``, and a ``meta`` naming the rater) and, in this order:

1. **Counts per rater** and **pairwise agreement**: two raters *share* an item when both
   judged it — the same prompt with the same two replies (a pair; the label is which reply
   won), or the same prompt and reply (approved or rejected; the label is the verdict).
   Agreement is the share of shared items on which their labels match.
2. **Flags contradictions**: the same prompt and the same two replies, preferred in opposite
   orders (by two raters, or by one rater twice). Both records get ``"contradiction"`` in
   ``meta["flags"]``; ``drop_contradictions`` removes them.
3. **Removes exact duplicates**: equal after normalising text (Unicode NFKC, case-folded,
   runs of whitespace made one space), whoever rated them.
4. **Removes near duplicates** (``datasketch`` MinHash LSH, imported only here): word 3-gram
   shingles, 128 permutations; two records are near duplicates when the estimated Jaccard
   similarity is at least ``near_duplicate_threshold`` (default 0.9) both for their prompts
   and for their replies (``chosen`` and ``rejected`` shingled apart, so a pair and its flip
   are never duplicates of each other).
5. **Caps machine-written examples** (rater ``model:…`` or ``meta["machine"]``) at
   ``max_machine_share`` of each dataset (default 0.5), dropping the surplus in a fixed
   pseudo-random order (by content hash), so the choice does not depend on thread order.

Of duplicates, the record kept is a person's over a machine's, then the earliest. The
input is never changed; records that stay get a copy of their ``meta`` with ``flags``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_MAX_MACHINE_SHARE",
    "DEFAULT_NEAR_DUPLICATE_THRESHOLD",
    "NUM_PERM",
    "Agreement",
    "DatasetReport",
    "HygieneReport",
    "RaterCount",
    "clean",
    "exact_key",
    "normalize",
]

DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.9
DEFAULT_MAX_MACHINE_SHARE = 0.5
NUM_PERM = 128
SHINGLE_WORDS = 3
RESPONSE_FIELDS = ("chosen", "rejected", "completion")

Record = dict[str, Any]


@dataclass(kw_only=True, slots=True)
class DatasetReport:
    """What hygiene did to one dataset (``pairs``, ``sft`` or ``unpaired``)."""

    total: int = 0
    contradictions: int = 0  # records flagged
    exact_duplicates: int = 0
    near_duplicates: int = 0
    contradictions_dropped: int = 0
    machine_before: int = 0
    machine_dropped: int = 0
    kept: int = 0


@dataclass(kw_only=True, slots=True)
class RaterCount:
    rater: str
    machine: bool
    examples: dict[str, int] = field(default_factory=dict)  # dataset -> records before cleaning

    @property
    def total(self) -> int:
        return sum(self.examples.values())


@dataclass(frozen=True, kw_only=True, slots=True)
class Agreement:
    """How often two raters gave the same label to items both judged."""

    raters: tuple[str, str]
    shared: int
    agreed: int

    @property
    def rate(self) -> float:
        return self.agreed / self.shared if self.shared else math.nan


@dataclass(kw_only=True, slots=True)
class HygieneReport:
    near_duplicate_threshold: float | None
    max_machine_share: float
    datasets: dict[str, DatasetReport] = field(default_factory=dict)
    raters: list[RaterCount] = field(default_factory=list)
    agreement: list[Agreement] = field(default_factory=list)
    contradictions: list[dict[str, Any]] = field(default_factory=list)  # one entry per contradicting group

    def to_dict(self) -> dict[str, Any]:
        return {
            "near_duplicate_threshold": self.near_duplicate_threshold,
            "max_machine_share": self.max_machine_share,
            "datasets": {
                name: {
                    "total": r.total,
                    "contradictions": r.contradictions,
                    "exact_duplicates": r.exact_duplicates,
                    "near_duplicates": r.near_duplicates,
                    "contradictions_dropped": r.contradictions_dropped,
                    "machine_before": r.machine_before,
                    "machine_dropped": r.machine_dropped,
                    "kept": r.kept,
                }
                for name, r in self.datasets.items()
            },
            "raters": [
                {"rater": r.rater, "machine": r.machine, "examples": dict(r.examples), "total": r.total}
                for r in self.raters
            ],
            "agreement": [
                {
                    "raters": list(a.raters),
                    "shared": a.shared,
                    "agreed": a.agreed,
                    "rate": None if math.isnan(a.rate) else a.rate,
                }
                for a in self.agreement
            ],
            "contradictions": self.contradictions,
        }


# -- normalising -----------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Text as compared for duplicates: NFKC, case-folded, whitespace runs made one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _message_text(message: Mapping[str, Any]) -> str:
    text = f"{message.get('role', '')}: {message.get('content') or ''}"
    calls = message.get("tool_calls")
    if calls:
        text += " " + json.dumps(calls, sort_keys=True, ensure_ascii=False)
    return normalize(text)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [normalize(value)]
    if isinstance(value, Sequence):
        return [_message_text(m) if isinstance(m, Mapping) else normalize(str(m)) for m in value]
    return []


def _key(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def exact_key(record: Mapping[str, Any]) -> str:
    """The normalised content of a record (everything but ``meta``), hashed."""
    parts: dict[str, Any] = {name: _texts(record.get(name)) for name in ("prompt", *RESPONSE_FIELDS) if name in record}
    if "label" in record:
        parts["label"] = bool(record["label"])
    return _key(parts)


def _meta(record: Mapping[str, Any]) -> dict[str, Any]:
    meta = record.get("meta")
    return meta if isinstance(meta, dict) else {}


def _rater(record: Mapping[str, Any]) -> str:
    return str(_meta(record).get("rater") or "anonymous")


def _is_machine(record: Mapping[str, Any]) -> bool:
    return bool(_meta(record).get("machine")) or _rater(record).startswith("model:")


# -- raters and contradictions ---------------------------------------------------------------------


def _labels(name: str, record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(item, label): what a record says, in terms two raters can compare."""
    prompt = _key(_texts(record.get("prompt")))
    if "chosen" in record and "rejected" in record:
        chosen, rejected = _key(_texts(record["chosen"])), _key(_texts(record["rejected"]))
        return "pair:" + prompt + ":" + ":".join(sorted((chosen, rejected))), chosen
    if "completion" in record:
        label = "true" if record.get("label", True) else "false"
        return f"{name}:{prompt}:{_key(_texts(record['completion']))}", label
    return None


def _agreement(datasets: Mapping[str, Sequence[Record]]) -> list[Agreement]:
    by_item: dict[str, dict[str, str]] = {}  # item -> rater -> their last label
    for name, records in datasets.items():
        if name == "sft" and "unpaired" in datasets:
            continue  # approvals are in `unpaired` too: count each verdict once
        for record in records:
            labelled = _labels("verdict", record)
            if labelled is not None:
                by_item.setdefault(labelled[0], {})[_rater(record)] = labelled[1]
    counts: dict[tuple[str, str], list[int]] = {}
    for labels in by_item.values():
        raters = sorted(labels)
        for i, a in enumerate(raters):
            for b in raters[i + 1 :]:
                tally = counts.setdefault((a, b), [0, 0])
                tally[0] += 1
                tally[1] += labels[a] == labels[b]
    return [Agreement(raters=k, shared=v[0], agreed=v[1]) for k, v in sorted(counts.items())]


def _contradictions(records: Sequence[Record]) -> tuple[set[int], list[dict[str, Any]]]:
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        labelled = _labels("pairs", record)
        if labelled is not None and labelled[0].startswith("pair:"):
            groups.setdefault(labelled[0], []).append(i)
    flagged: set[int] = set()
    found: list[dict[str, Any]] = []
    for members in groups.values():
        winners = {_labels("pairs", records[i])[1] for i in members}  # type: ignore[index]
        if len(winners) < 2:
            continue
        flagged |= set(members)
        found.append(
            {
                "prompt": _preview(records[members[0]].get("prompt")),
                "raters": sorted({_rater(records[i]) for i in members}),
                "records": [
                    {k: _meta(records[i]).get(k) for k in ("thread_id", "checkpoint_id", "rater")} for i in members
                ],
            }
        )
    return flagged, found


def _preview(prompt: Any, width: int = 80) -> str:
    texts = _texts(prompt)
    text = texts[-1] if texts else ""
    return text if len(text) <= width else text[: width - 1] + "…"


# -- near duplicates ---------------------------------------------------------------------------------


def _shingles(tag: str, texts: Iterable[str]) -> set[bytes]:
    out: set[bytes] = set()
    for text in texts:
        words = text.split(" ")
        if len(words) < SHINGLE_WORDS:
            out.add(f"{tag}|{text}".encode())
            continue
        for i in range(len(words) - SHINGLE_WORDS + 1):
            out.add(f"{tag}|{' '.join(words[i : i + SHINGLE_WORDS])}".encode())
    return out or {f"{tag}|".encode()}


def _near_duplicates(records: Sequence[Record], order: Sequence[int], threshold: float) -> set[int]:
    """Indices (in ``order`` of preference) that nearly repeat a record kept before them."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError as exc:  # pragma: no cover - datasketch comes with the tune extra
        raise ImportError(
            "near-duplicate removal needs datasketch: pip install 'tether[tune]' (or turn it off with "
            "near_duplicate_threshold=None)"
        ) from exc

    def minhash(shingles: set[bytes]) -> Any:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch(sorted(shingles))
        return m

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    kept: dict[str, tuple[Any, Any]] = {}
    dropped: set[int] = set()
    for i in order:
        record = records[i]
        reply = set().union(*(_shingles(f, _texts(record[f])) for f in RESPONSE_FIELDS if f in record))
        if "label" in record:
            reply.add(f"label|{bool(record['label'])}".encode())
        reply_hash = minhash(reply)
        prompt_hash = minhash(_shingles("prompt", _texts(record.get("prompt"))))
        duplicate = any(
            kept[c][0].jaccard(reply_hash) >= threshold and kept[c][1].jaccard(prompt_hash) >= threshold
            for c in lsh.query(reply_hash)
        )
        if duplicate:
            dropped.add(i)
            continue
        key = str(i)
        lsh.insert(key, reply_hash)
        kept[key] = (reply_hash, prompt_hash)
    return dropped


# -- the whole pass ----------------------------------------------------------------------------------


def _machine_cap(records: Sequence[Record], keep: list[int], share: float) -> set[int]:
    """Machine-written indices to drop so they are at most ``share`` of what is kept."""
    machine = [i for i in keep if _is_machine(records[i])]
    people = len(keep) - len(machine)
    if share >= 1 or not machine:
        return set()
    allowed = math.floor(share * people / (1 - share) + 1e-9)
    if len(machine) <= allowed:
        return set()
    ranked = sorted(machine, key=lambda i: (exact_key(records[i]), i))
    return set(ranked[allowed:])


def clean(
    datasets: Mapping[str, Sequence[Record]],
    *,
    near_duplicate_threshold: float | None = DEFAULT_NEAR_DUPLICATE_THRESHOLD,
    max_machine_share: float = DEFAULT_MAX_MACHINE_SHARE,
    drop_contradictions: bool = False,
) -> tuple[dict[str, list[Record]], HygieneReport]:
    """Clean each dataset (see the module docstring); returns the kept records and a report.

    ``near_duplicate_threshold=None`` skips near-duplicate removal (and datasketch).
    """
    if near_duplicate_threshold is not None and not 0 < near_duplicate_threshold <= 1:
        raise ValueError(f"near_duplicate_threshold must be in (0, 1] or None, got {near_duplicate_threshold}")
    if not 0 <= max_machine_share <= 1:
        raise ValueError(f"max_machine_share must be between 0 and 1, got {max_machine_share}")
    report = HygieneReport(near_duplicate_threshold=near_duplicate_threshold, max_machine_share=max_machine_share)
    raters: dict[str, RaterCount] = {}
    for name, records in datasets.items():
        for record in records:
            who = _rater(record)
            count = raters.setdefault(who, RaterCount(rater=who, machine=_is_machine(record)))
            count.examples[name] = count.examples.get(name, 0) + 1
    report.raters = sorted(raters.values(), key=lambda r: (-r.total, r.rater))
    report.agreement = _agreement(datasets)

    out: dict[str, list[Record]] = {}
    for name, records in datasets.items():
        stats = DatasetReport(total=len(records))
        flagged, found = _contradictions(records)
        stats.contradictions = len(flagged)
        report.contradictions += [{"dataset": name, **c} for c in found]
        # preference among copies: a person's over a machine's, then the earliest
        order = sorted(range(len(records)), key=lambda i: (_is_machine(records[i]), i))
        seen: set[str] = set()
        exact: set[int] = set()
        for i in order:
            key = exact_key(records[i])
            if key in seen:
                exact.add(i)
            seen.add(key)
        stats.exact_duplicates = len(exact)
        remaining = [i for i in order if i not in exact]
        near = _near_duplicates(records, remaining, near_duplicate_threshold) if near_duplicate_threshold else set()
        stats.near_duplicates = len(near)
        keep = sorted(i for i in remaining if i not in near)
        if drop_contradictions:
            stats.contradictions_dropped = sum(1 for i in keep if i in flagged)
            keep = [i for i in keep if i not in flagged]
        stats.machine_before = sum(1 for i in keep if _is_machine(records[i]))
        capped = _machine_cap(records, keep, max_machine_share)
        stats.machine_dropped = len(capped)
        keep = [i for i in keep if i not in capped]
        stats.kept = len(keep)
        report.datasets[name] = stats
        cleaned: list[Record] = []
        for i in keep:
            meta = dict(_meta(records[i]))
            flags = list(meta.get("flags") or [])
            if i in flagged and "contradiction" not in flags:
                flags.append("contradiction")
            meta["flags"] = flags
            cleaned.append({**records[i], "meta": meta})
        out[name] = cleaned
    return out, report
