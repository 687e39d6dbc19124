"""Finding the decisions people made about a model's replies, in the threads Tether stores.

A thread's log already says what a person did: ``update_state`` commits a checkpoint of
source ``update``, and the answers given to ``interrupt()`` stay as ``resume`` rows next to
the question. ``find_decisions`` walks every checkpoint of every thread in order (a tree
when a thread was forked), rebuilds the state before and after each one, and reads these
records. Only messages under one state key (``messages``) are looked at, and only
``AIMessage`` replies are judged; the rules, precisely:

**Edit** (a preference pair: chosen = the new version, rejected = the old one, prompt = the
messages before the old one). A person's write holds an ``AIMessage`` whose id is already in
the conversation and whose text or tool calls differ; or it removes an ``AIMessage``
(``RemoveMessage``) and adds a new one in the same write. A *person's write* is: every write
of an ``update`` checkpoint, the ``Command(update=…)`` given with a resume, and what a task
resumed with ``Command(resume=…)`` wrote in the step that answered it.

**Rejection** (an output a person turned down, with a reason when one was given). A person's
write removes an ``AIMessage`` without replacing it; or answers one of its tool calls with a
``ToolMessage`` of status ``error`` (the reason is that message's text, as
``create_react_agent(interrupt_before=["tools"])`` users write it); or an ``interrupt()``
reviewing it is answered with a rejection.

**Approval** (a supervised example: prompt and the reply, unchanged). An ``interrupt()`` that
reviews the reply is answered with an approval, and the step that answered it committed with
the reply unchanged. An interrupt *reviews* the message its payload names
(``{"message_id": …}``), or else the last message of the conversation when the interrupt
was raised, if that is an ``AIMessage``. With ``breakpoints=["tools"]`` (nodes the graph was
compiled to pause before, ``interrupt_before``), a step that ran such a node straight from
the checkpoint that paused — nobody updated the state in between — approves the
``AIMessage`` that ended the conversation there. The log does not record that a run paused
at a breakpoint, so this rule applies only to the nodes named.

Answers read as approvals: ``True``, ``"approve"``/``"approved"``/``"accept"``/``"yes"``/``"y"``/
``"ok"``, ``{"action": "approve"}`` (or ``"accept"``), ``{"type": "accept"}``. Rejections:
``False``, ``"reject"``/``"no"``/``"n"``, ``"reject:<reason>"``, ``{"action": "reject",
"reason": …}``, ``{"type": "ignore"}``, ``{"type": "response", "args": <reason>}``. Edits:
``"edit:<text>"``, ``{"action": "edit", "text": …}`` (or ``"content"``), ``{"type": "edit",
"args": <text>}``; an edit answer makes a pair even when the graph stores the text elsewhere.
Any other answer is not a decision.

**Who decided**: a ``"rater"`` key in a dict answer, else the ``rater`` (or ``user_id``) in the
metadata of the run or ``update_state`` call that committed it, else ``"anonymous"``. A rater
named ``model:…`` (or metadata ``{"machine": true}``) marks a machine-written decision.

Explicit feedback (``record_feedback``) joins in at the checkpoint it names: ``choice``
approve/reject, ``correction`` (an edit) and ``score`` (two scores of one rater for replies to
the same prompt make a pair, in ``export``).

**Damaged threads**: a thread whose rows cannot be read (a value that is not JSON, a snapshot or
task list of the wrong shape) raises ``UnreadableThreadError`` naming the thread and the
checkpoint being read; ``scan_decisions(on_error="skip")`` leaves such threads out instead and
lists each one, so one bad row does not stop the others. A skipped thread contributes nothing:
decisions read before the bad row are dropped with it, so no thread is half exported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tether._names import PENDING_INTERRUPT, PENDING_RESUME
from tether.answers import read_answer
from tether.checkpoint._base import BaseCheckpointSaver, CheckpointRecord, PendingWrite
from tether.errors import CheckpointError, InvalidResumeError, TetherError
from tether.graph._algo import Topology, tasks_from_specs
from tether.graph._offline import KNOWN_REDUCERS
from tether.graph._schema import Channel
from tether.graph._state import INPUT_NODE, DecodedCheckpoint, decode_pending, decode_record, decode_snapshot, fold
from tether.messages import AIMessage, BaseMessage, RemoveMessage, ToolMessage, convert_to_messages

__all__ = [
    "APPROVE_WORDS",
    "REJECT_WORDS",
    "Answer",
    "Decision",
    "DecisionScan",
    "SkippedThread",
    "UnreadableThreadError",
    "find_decisions",
    "parse_answer",
    "scan_decisions",
    "thread_decisions",
]

DecisionKind = Literal["edit", "approval", "rejection", "score"]
Origin = Literal["update_state", "interrupt", "breakpoint", "feedback"]
OnError = Literal["skip", "fail"]
# what reading damaged rows raises: Tether's own errors, and the shape errors of rows that decode
# but do not hold what a checkpoint holds (a snapshot without "values", a task without "node")
_DAMAGED = (TetherError, LookupError, TypeError, ValueError)

APPROVE_WORDS = frozenset({"approve", "approved", "accept", "accepted", "yes", "y", "ok", "lgtm"})
REJECT_WORDS = frozenset({"reject", "rejected", "no", "n", "deny", "denied", "ignore"})
RATER_KEYS = ("rater", "user_id")
ANONYMOUS = "anonymous"


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """One judgement of one model reply, traceable to the checkpoint where it was committed.

    ``output`` is the reply as the model (or an earlier edit) left it; ``edited`` is the new
    version for an edit. ``prompt`` is every message before ``output`` in the conversation.
    """

    kind: DecisionKind
    origin: Origin
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str  # the checkpoint that committed the decision (or that the feedback names)
    created_at: str
    rater: str
    machine: bool
    prompt: tuple[BaseMessage, ...]
    output: AIMessage
    edited: AIMessage | None = None
    reason: str | None = None
    score: float | None = None

    @property
    def message_id(self) -> str:
        return self.output.id or ""


@dataclass(frozen=True, kw_only=True, slots=True)
class SkippedThread:
    """A thread left out of an export because a row of it could not be read."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None  # the checkpoint being read when it failed (None: its list of checkpoints)
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "checkpoint_ns": self.checkpoint_ns,
            "checkpoint_id": self.checkpoint_id,
            "reason": self.reason,
        }


class UnreadableThreadError(CheckpointError):
    """A thread's rows cannot be read; ``skipped`` names the thread, the checkpoint and why."""

    def __init__(self, skipped: SkippedThread) -> None:
        ns = f" (namespace {skipped.checkpoint_ns!r})" if skipped.checkpoint_ns else ""
        at = f" at checkpoint {skipped.checkpoint_id!r}" if skipped.checkpoint_id else ""
        super().__init__(
            f"cannot read thread {skipped.thread_id!r}{ns}{at}: {skipped.reason}; repair or delete the thread, "
            "or leave it out with --on-error skip (on_error='skip')"
        )
        self.skipped = skipped


@dataclass(frozen=True, kw_only=True, slots=True)
class DecisionScan:
    """What ``scan_decisions`` found: the decisions, and the threads it could not read."""

    decisions: list[Decision]
    skipped: list[SkippedThread]


@dataclass(slots=True)
class _Cursor:
    """The checkpoint being read, so an error can name it."""

    checkpoint_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Answer:
    """What a person's answer to an interrupt means: ``action`` approve/reject/edit."""

    action: Literal["approve", "reject", "edit"]
    reason: str | None = None
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    rater: str | None = None


def parse_answer(value: Any) -> Answer | None:
    """Read a resume value as an approval, rejection or edit; None when it is none of those.

    Text is first read as ``tether.answers.read_answer`` reads what a person types (so "n too
    slow" is the rejection the prompt took it for), then by the wider word lists above, which
    other tools store.
    """
    if isinstance(value, bool):
        return Answer(action="approve" if value else "reject")
    if isinstance(value, str):
        try:
            clear = read_answer(value)
        except InvalidResumeError:
            clear = None
        if clear is not None:
            return Answer(action=clear.action, reason=clear.reason, text=clear.text, rater=clear.rater)
        word, sep, rest = value.strip().partition(":")
        word = word.strip().lower()
        rest = rest.strip()
        if word in APPROVE_WORDS and not rest:
            return Answer(action="approve")
        if word in REJECT_WORDS:
            return Answer(action="reject", reason=rest or None)
        if word == "edit" and sep and rest:
            return Answer(action="edit", text=rest)
        return None
    if not isinstance(value, dict):
        return None
    rater = value.get("rater") if isinstance(value.get("rater"), str) else None
    action = value.get("action", value.get("type"))
    if not isinstance(action, str):
        return None
    action = action.strip().lower()
    if action in APPROVE_WORDS:
        return Answer(action="approve", rater=rater)
    if action in REJECT_WORDS or action == "response":
        reason = value.get("reason", value.get("args"))
        return Answer(action="reject", reason=str(reason) if reason not in (None, "") else None, rater=rater)
    if action == "edit":
        text = value.get("text", value.get("content", value.get("args")))
        calls = value.get("tool_calls")
        if isinstance(text, str) or isinstance(calls, list):
            return Answer(
                action="edit",
                text=text if isinstance(text, str) else None,
                tool_calls=calls if isinstance(calls, list) else None,
                rater=rater,
            )
    return None


# -- reading a thread -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Step:
    """A checkpoint with the state before it (its parent's) and after it."""

    decoded: DecodedCheckpoint
    parent: DecodedCheckpoint | None
    before: dict[str, Any]
    after: dict[str, Any]
    children: list[CheckpointRecord] = field(default_factory=list)


def _topology(
    saver: BaseCheckpointSaver, thread_id: str, ns: str, records: Sequence[CheckpointRecord], cursor: _Cursor
) -> Topology:
    """Channels with the reducers the thread's first snapshot names (as ``read_state`` does)."""
    root = records[0]
    cursor.checkpoint_id = root.checkpoint_id
    loaded = saver.get(thread_id, ns, root.checkpoint_id)
    snapshot = decode_snapshot(loaded.record) if loaded and loaded.record.snapshot else {}
    names: dict[str, str] = snapshot.get("reducers", {})
    keys = set(names) | set(snapshot.get("values", {}))
    for record in records:
        cursor.checkpoint_id = record.checkpoint_id
        for entry in decode_record(record).writes:
            keys |= {k for k, _ in entry.get("writes", ())}
    channels = {}
    for key in keys:
        reducer = KNOWN_REDUCERS.get(names.get(key, ""))
        channels[key] = Channel(key, reducer) if reducer else Channel(key)
    return Topology(channels=channels, node_order={})


def _walk(saver: BaseCheckpointSaver, thread_id: str, ns: str, cursor: _Cursor) -> Iterator[_Step]:
    """Every checkpoint of a thread, parents before children, with the states around it.

    Depth-first over the checkpoint tree, holding only the states of checkpoints whose
    children are still to visit, so a long linear thread keeps one state in memory.
    """
    records = sorted(saver.list(thread_id, ns), key=lambda r: r.checkpoint_id)
    if not records:
        return
    ids = {r.checkpoint_id for r in records}
    children: dict[str | None, list[CheckpointRecord]] = {}
    for r in records:
        children.setdefault(r.parent_id if r.parent_id in ids else None, []).append(r)
    topo = _topology(saver, thread_id, ns, records, cursor)
    stack: list[tuple[CheckpointRecord, DecodedCheckpoint | None, dict[str, Any]]] = [
        (r, None, {}) for r in reversed(children.get(None, []))
    ]
    while stack:
        record, parent, before = stack.pop()
        cursor.checkpoint_id = record.checkpoint_id
        decoded = decode_record(record)
        if parent is None:
            loaded = saver.get(thread_id, ns, record.checkpoint_id)
            first = loaded.chain[0] if loaded and loaded.chain else None
            if first is not None and first.checkpoint_id == record.checkpoint_id and first.snapshot is not None:
                after = dict(decode_snapshot(first)["values"])
            else:
                after = fold(topo, {}, None, decoded)
        else:
            after = fold(topo, before, parent, decoded)
        yield _Step(decoded, parent, before, after)
        for child in reversed(children.get(record.checkpoint_id, [])):
            stack.append((child, decoded, after))


def _messages(values: dict[str, Any], key: str) -> list[BaseMessage]:
    value = values.get(key)
    return [m for m in value if isinstance(m, BaseMessage)] if isinstance(value, list) else []


def _written(value: Any) -> list[Any]:
    """Messages and RemoveMessages from one write to the messages key."""
    items = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, (BaseMessage, RemoveMessage)):
            out.append(item)
        else:
            try:
                out += convert_to_messages(item)
            except (ValueError, TypeError):
                continue
    return out


def _same_reply(a: AIMessage, b: AIMessage) -> bool:
    calls = [(c.get("name"), c.get("args")) for c in a.tool_calls]
    return a.text == b.text and calls == [(c.get("name"), c.get("args")) for c in b.tool_calls]


def _rater(metadata: dict[str, Any], answer: Answer | None = None) -> tuple[str, bool]:
    rater = answer.rater if answer and answer.rater else None
    if rater is None:
        rater = next((str(metadata[k]) for k in RATER_KEYS if metadata.get(k)), ANONYMOUS)
    return rater, rater.startswith("model:") or metadata.get("machine") is True


class _ThreadReader:
    def __init__(
        self,
        saver: BaseCheckpointSaver,
        thread_id: str,
        ns: str,
        *,
        messages_key: str,
        breakpoints: frozenset[str],
        feedback: dict[str, list[Any]],
    ) -> None:
        self.saver, self.thread_id, self.ns = saver, thread_id, ns
        self.key, self.breakpoints, self.feedback = messages_key, breakpoints, feedback
        self.found: list[Decision] = []
        self.cursor = _Cursor()

    def decision(self, step: _Step, **fields: Any) -> Decision:
        record = step.decoded.record
        fields.setdefault("checkpoint_id", record.checkpoint_id)
        fields.setdefault("created_at", record.created_at)
        return Decision(thread_id=self.thread_id, checkpoint_ns=self.ns, **fields)

    def read(self) -> list[Decision]:
        for step in _walk(self.saver, self.thread_id, self.ns, self.cursor):
            self.cursor.checkpoint_id = step.decoded.record.checkpoint_id
            touched: set[str] = set()
            if step.parent is not None:
                answers = self._answers(step)
                touched |= self._person_writes(step, answers)
                self._reviews(step, answers, touched)
                self._breakpoint(step)
            self._feedback(step)
        return self.found

    # a person's writes: update checkpoints, Command(update=…), and what resumed tasks wrote
    def _answers(self, step: _Step) -> dict[str, list[tuple[Any, Any]]]:
        """Per resumed task id: (interrupt payload, answer) pairs recorded at the parent."""
        assert step.parent is not None
        if step.decoded.record.source != "loop" or not _messages(step.before, self.key):
            return {}
        asked: dict[str, dict[str, Any]] = {}
        answered: dict[str, dict[str, Any]] = {}
        for p in self.saver.pending(self.thread_id, self.ns, step.parent.record.checkpoint_id):
            if p.kind == PENDING_INTERRUPT:
                asked[p.task_id] = {i["id"]: i.get("value") for i in self._pending_value(step, p)}
            elif p.kind == PENDING_RESUME:
                answered[p.task_id] = self._pending_value(step, p)
        out: dict[str, list[tuple[Any, Any]]] = {}
        for task_id, values in answered.items():
            questions = asked.get(task_id, {})
            out[task_id] = [(questions.get(iid), value) for iid, value in values.items()]
        return out

    def _pending_value(self, step: _Step, write: PendingWrite) -> Any:
        assert step.parent is not None
        return decode_pending(self.thread_id, step.parent.record.checkpoint_id, write)

    def _person_writes(self, step: _Step, answers: dict[str, list[tuple[Any, Any]]]) -> set[str]:
        """Edits and rejections written by a person; returns the ids of the replies they touched."""
        assert step.parent is not None
        record = step.decoded.record
        entries = step.decoded.writes
        if record.source != "update":
            task_ids = [t.id for t in tasks_from_specs(step.parent.record.checkpoint_id, step.parent.next)]
            resumed = {i for i, tid in enumerate(task_ids) if tid in answers}
            entries = [e for e in entries if e.get("node") == INPUT_NODE or e.get("task") in resumed]
        before = {m.id: m for m in _messages(step.before, self.key)}
        order = [m.id for m in _messages(step.before, self.key)]
        rater, machine = _rater(step.decoded.metadata)
        touched: set[str] = set()
        removed: list[AIMessage] = []
        added: list[AIMessage] = []
        errors: dict[str, list[str]] = {}
        for entry in entries:
            for key, value in entry.get("writes", ()):
                if key != self.key:
                    continue
                for item in _written(value):
                    old = before.get(item.id) if item.id else None
                    if isinstance(item, RemoveMessage):
                        if isinstance(old, AIMessage):
                            removed.append(old)
                    elif isinstance(item, AIMessage):
                        if isinstance(old, AIMessage):
                            if not _same_reply(old, item):
                                self.found.append(self._edit(step, old, item, order, rater, machine))
                                touched.add(old.id or "")
                        elif old is None:
                            added.append(item)
                    elif isinstance(item, ToolMessage) and item.status == "error":
                        errors.setdefault(item.tool_call_id, []).append(item.text)
        for old, new in zip(removed, added):
            self.found.append(self._edit(step, old, new, order, rater, machine))
            touched.add(old.id or "")
        for old in removed[len(added) :]:
            self.found.append(self._rejection(step, old, order, None, rater, machine))
            touched.add(old.id or "")
        if errors:
            for message in before.values():
                if isinstance(message, AIMessage) and message.id not in touched:
                    reasons = [r for c in message.tool_calls for r in errors.get(c.get("id") or "", [])]
                    if reasons:
                        reason = "; ".join(reasons)
                        self.found.append(self._rejection(step, message, order, reason, rater, machine))
                        touched.add(message.id or "")
        return touched

    def _reviews(self, step: _Step, answers: dict[str, list[tuple[Any, Any]]], touched: set[str]) -> None:
        """Interrupts answered with an approval, a rejection or an edit of the reply they review."""
        conversation = _messages(step.before, self.key)
        by_id = {m.id: m for m in conversation}
        order = [m.id for m in conversation]
        after = {m.id: m for m in _messages(step.after, self.key)}
        for task_answers in answers.values():
            for payload, value in task_answers:
                answer = parse_answer(value)
                if answer is None:
                    continue
                named = payload.get("message_id") if isinstance(payload, dict) else None
                subject = by_id.get(named) if isinstance(named, str) else (conversation[-1] if conversation else None)
                if not isinstance(subject, AIMessage):
                    continue
                rater, machine = _rater(step.decoded.metadata, answer)
                if subject.id in touched:
                    # the resumed task wrote the decision itself; the answer adds its reason and rater
                    self._annotate(step, subject, answer, rater, machine)
                    continue
                if answer.action == "approve":
                    kept = after.get(subject.id)
                    if isinstance(kept, AIMessage) and _same_reply(kept, subject):
                        self.found.append(
                            self.decision(
                                step,
                                kind="approval",
                                origin="interrupt",
                                rater=rater,
                                machine=machine,
                                prompt=self._prompt(order, by_id, subject),
                                output=subject,
                            )
                        )
                elif answer.action == "reject":
                    self.found.append(self._rejection(step, subject, order, answer.reason, rater, machine, "interrupt"))
                else:
                    update: dict[str, Any] = {}
                    if answer.text is not None:
                        update["content"] = answer.text
                    if answer.tool_calls is not None:
                        update["tool_calls"] = answer.tool_calls
                    try:
                        edited = AIMessage(**{**subject.model_dump(), **update})
                    except ValueError:
                        continue
                    if not _same_reply(edited, subject):
                        self.found.append(self._edit(step, subject, edited, order, rater, machine, "interrupt"))
                touched.add(subject.id or "")

    def _annotate(self, step: _Step, subject: AIMessage, answer: Answer, rater: str, machine: bool) -> None:
        here = step.decoded.record.checkpoint_id
        for i, found in enumerate(self.found):
            if found.checkpoint_id == here and found.message_id == subject.id and found.origin == "update_state":
                reason = found.reason or (answer.reason if answer.action == "reject" else None)
                self.found[i] = replace(found, origin="interrupt", reason=reason, rater=rater, machine=machine)

    def _breakpoint(self, step: _Step) -> None:
        """A paused step run on without an update: the reply that ended the conversation is approved."""
        assert step.parent is not None
        if not self.breakpoints or step.decoded.record.source != "loop" or step.parent.record.source == "update":
            return  # after an update, the update was the decision
        ran = {t.node for t in tasks_from_specs(step.parent.record.checkpoint_id, step.parent.next)}
        if not ran & self.breakpoints:
            return
        conversation = _messages(step.before, self.key)
        if not conversation or not isinstance(conversation[-1], AIMessage):
            return
        subject = conversation[-1]
        kept = {m.id: m for m in _messages(step.after, self.key)}.get(subject.id)
        if not isinstance(kept, AIMessage) or not _same_reply(kept, subject):
            return
        rater, machine = _rater(step.decoded.metadata)
        self.found.append(
            self.decision(
                step,
                kind="approval",
                origin="breakpoint",
                rater=rater,
                machine=machine,
                prompt=tuple(conversation[:-1]),
                output=subject,
            )
        )

    def _feedback(self, step: _Step) -> None:
        rows = self.feedback.get(step.decoded.record.checkpoint_id)
        if not rows:
            return
        conversation = _messages(step.after, self.key)
        by_id = {m.id: m for m in conversation}
        order = [m.id for m in conversation]
        for row in rows:
            subject = by_id.get(row.message_id)
            if not isinstance(subject, AIMessage):
                continue
            common = {
                "origin": "feedback",
                "rater": row.rater,
                "machine": row.machine,
                "created_at": row.created_at,
                "prompt": self._prompt(order, by_id, subject),
                "output": subject,
            }
            value = row.value
            if row.kind == "choice":
                approved = value.get("choice") == "approve"
                kind = "approval" if approved else "rejection"
                self.found.append(self.decision(step, kind=kind, reason=value.get("reason"), **common))
            elif row.kind == "score":
                self.found.append(self.decision(step, kind="score", score=float(value["score"]), **common))
            elif row.kind == "correction":
                edited = AIMessage(
                    **{
                        **subject.model_dump(),
                        "content": value.get("content", ""),
                        "tool_calls": value.get("tool_calls", []),
                    }
                )
                self.found.append(self.decision(step, kind="edit", edited=edited, reason=value.get("reason"), **common))

    # -- building decisions ---------------------------------------------------------------------
    @staticmethod
    def _prompt(
        order: list[str | None], by_id: dict[str | None, BaseMessage], subject: BaseMessage
    ) -> tuple[BaseMessage, ...]:
        index = order.index(subject.id)
        return tuple(by_id[i] for i in order[:index])

    def _edit(
        self,
        step: _Step,
        old: AIMessage,
        new: AIMessage,
        order: list[str | None],
        rater: str,
        machine: bool,
        origin: Origin = "update_state",
    ) -> Decision:
        by_id = {m.id: m for m in _messages(step.before, self.key)}
        return self.decision(
            step,
            kind="edit",
            origin=origin,
            rater=rater,
            machine=machine,
            prompt=self._prompt(order, by_id, old),
            output=old,
            edited=new,
        )

    def _rejection(
        self,
        step: _Step,
        old: AIMessage,
        order: list[str | None],
        reason: str | None,
        rater: str,
        machine: bool,
        origin: Origin = "update_state",
    ) -> Decision:
        by_id = {m.id: m for m in _messages(step.before, self.key)}
        return self.decision(
            step,
            kind="rejection",
            origin=origin,
            rater=rater,
            machine=machine,
            prompt=self._prompt(order, by_id, old),
            output=old,
            reason=reason,
        )


def thread_decisions(
    saver: BaseCheckpointSaver,
    thread_id: str,
    checkpoint_ns: str = "",
    *,
    messages_key: str = "messages",
    breakpoints: Sequence[str] = (),
    feedback: Sequence[Any] = (),
) -> list[Decision]:
    """The decisions in one thread, oldest first (see the module docstring for the rules).

    ``feedback`` holds this thread's ``Feedback`` rows (``list_feedback``), joined in at the
    checkpoints they name. A row that cannot be read raises ``UnreadableThreadError``, naming
    the thread and the checkpoint.
    """
    by_checkpoint: dict[str, list[Any]] = {}
    for row in feedback:
        if row.thread_id == thread_id and row.checkpoint_ns == checkpoint_ns:
            by_checkpoint.setdefault(row.checkpoint_id, []).append(row)
    reader = _ThreadReader(
        saver,
        thread_id,
        checkpoint_ns,
        messages_key=messages_key,
        breakpoints=frozenset(breakpoints),
        feedback=by_checkpoint,
    )
    try:
        return reader.read()
    except _DAMAGED as exc:
        reason = str(exc) if isinstance(exc, TetherError) else f"{type(exc).__name__}: {exc}"
        skipped = SkippedThread(
            thread_id=thread_id, checkpoint_ns=checkpoint_ns, checkpoint_id=reader.cursor.checkpoint_id, reason=reason
        )
        raise UnreadableThreadError(skipped) from exc


def scan_decisions(
    saver: BaseCheckpointSaver,
    *,
    threads: Sequence[str] | None = None,
    messages_key: str = "messages",
    breakpoints: Sequence[str] = (),
    include_feedback: bool = True,
    on_error: OnError = "fail",
) -> DecisionScan:
    """Every decision in the store (or in ``threads``), thread by thread, oldest first.

    With ``include_feedback`` (and a SQLite or PostgreSQL store) the rows ``record_feedback``
    wrote are included; the store is only read, never written. A thread whose rows cannot be
    read raises ``UnreadableThreadError`` (``on_error="fail"``), or is left out and listed in
    ``skipped`` with its checkpoint and the reason (``on_error="skip"``).
    """
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error is 'skip' or 'fail', not {on_error!r}")
    rows: list[Any] = []
    if include_feedback:
        from tether.tune.feedback import list_feedback

        rows = list_feedback(saver)
    wanted = set(threads) if threads is not None else None
    found: list[Decision] = []
    skipped: list[SkippedThread] = []
    summaries = sorted(saver.threads(), key=lambda s: (s.thread_id, s.checkpoint_ns))
    for summary in summaries:
        if wanted is not None and summary.thread_id not in wanted:
            continue
        mine = [r for r in rows if r.thread_id == summary.thread_id and r.checkpoint_ns == summary.checkpoint_ns]
        try:
            found += thread_decisions(
                saver,
                summary.thread_id,
                summary.checkpoint_ns,
                messages_key=messages_key,
                breakpoints=breakpoints,
                feedback=mine,
            )
        except UnreadableThreadError as exc:
            if on_error == "fail":
                raise
            skipped.append(exc.skipped)
    return DecisionScan(decisions=found, skipped=skipped)


def find_decisions(
    saver: BaseCheckpointSaver,
    *,
    threads: Sequence[str] | None = None,
    messages_key: str = "messages",
    breakpoints: Sequence[str] = (),
    include_feedback: bool = True,
) -> list[Decision]:
    """Every decision in the store (or in ``threads``), thread by thread, oldest first.

    With ``include_feedback`` (and a SQLite or PostgreSQL store) the rows ``record_feedback``
    wrote are included; the store is only read, never written. A thread that cannot be read
    raises ``UnreadableThreadError``; ``scan_decisions(on_error="skip")`` leaves it out instead.
    """
    scan = scan_decisions(
        saver,
        threads=threads,
        messages_key=messages_key,
        breakpoints=breakpoints,
        include_feedback=include_feedback,
        on_error="fail",
    )
    return scan.decisions
