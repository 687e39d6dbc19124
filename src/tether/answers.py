"""A person's answer to an approval question, read as approve, reject or edit — or refused as unclear.

One reader serves every place a person answers such a question: the prompt and the graph of
``examples/approval.py``, ``examples/agent_approval.py``, and ``tether resume --answer``.
The forms it accepts (case and surrounding spaces do not matter):

==========  =============================================  ========================================
action      typed                                          JSON (``{"action": …}``)
==========  =============================================  ========================================
approve     ``approve``, ``a``, ``yes``, ``y``             ``{"action": "approve"}``, ``true``
reject      ``reject``, ``r``, ``no``, ``n``, optionally   ``{"action": "reject", "reason": "…"}``,
            with a reason after ``:``, ``,`` or a space    ``false``
            (``reject: too long``, ``n not today``)
edit        ``edit``, ``e``, with the new text after        ``{"action": "edit", "text": "…"}``
            ``:`` or a space (``edit: Tether 1.4 …``)
==========  =============================================  ========================================

A JSON string (``"approve"``) is read as the typed form it holds; a dict may also name its
``rater``. Anything else is *unclear* and raises :class:`~tether.errors.InvalidResumeError`
listing these forms: ``yes please``, ``sure``, ``approve it``, ``edit`` without text, an
empty line, a dict with an unknown key, text that starts like JSON but does not parse
(``{"action": "approve"``). A prompt asks again; a command refuses and writes nothing. An
unclear answer is never taken as a rejection, because rejections become training data
(``tether tune export``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from tether.errors import InvalidResumeError

__all__ = ["ACTIONS", "ApprovalAnswer", "accepted_forms", "read_answer"]

Action = Literal["approve", "reject", "edit"]
ACTIONS: tuple[Action, ...] = ("approve", "reject", "edit")

_WORDS: dict[str, Action] = {
    "approve": "approve",
    "a": "approve",
    "yes": "approve",
    "y": "approve",
    "reject": "reject",
    "r": "reject",
    "no": "reject",
    "n": "reject",
    "edit": "edit",
    "e": "edit",
}
_FORMS: dict[Action, str] = {
    "approve": "approve (or a, yes, y)",
    "reject": "reject[:<why>] (or r, no, n)",
    "edit": "edit:<new text> (or e:<new text>)",
}
_JSON_FORMS: dict[Action, str] = {
    "approve": '{"action": "approve"}',
    "reject": '{"action": "reject", "reason": "..."}',
    "edit": '{"action": "edit", "text": "..."}',
}
_DICT_KEYS = frozenset({"action", "reason", "text", "rater"})
# a word, then the end, a colon, a comma or whitespace, then the rest ("n too slow", "no, too long")
_TYPED = re.compile(r"([A-Za-z]+)\s*(?:$|[:,]\s*|\s+)(.*)", re.S)


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalAnswer:
    """A clear answer: ``approve``; ``reject`` with an optional ``reason``; ``edit`` with the new ``text``."""

    action: Action
    reason: str | None = None
    text: str | None = None
    rater: str | None = None

    def as_resume(self) -> dict[str, Any]:
        """The value to resume the interrupt with (``Command(resume=…)``): plain JSON, one meaning."""
        out: dict[str, Any] = {"action": self.action}
        if self.action == "reject":
            out["reason"] = self.reason
        if self.action == "edit":
            out["text"] = self.text
        if self.rater is not None:
            out["rater"] = self.rater
        return out


def accepted_forms(actions: Collection[Action] = ACTIONS) -> str:
    """The forms ``read_answer`` accepts for ``actions``, as one line to show a person."""
    allowed = [a for a in ACTIONS if a in actions]
    typed = " | ".join(_FORMS[a] for a in allowed)
    as_json = " | ".join(_JSON_FORMS[a] for a in allowed)
    return f"{typed}; or as JSON: {as_json}"


def read_answer(value: Any, *, actions: Collection[Action] = ACTIONS) -> ApprovalAnswer:
    """``value`` (typed text, a JSON text, or an already decoded JSON value) as a clear answer.

    Raises ``InvalidResumeError`` naming the problem and listing the accepted forms when the
    answer is unclear or its action is not one of ``actions``.
    """
    answer = _read(value, actions)
    if answer.action not in actions:
        raise _unclear(value, actions, f"{answer.action!r} is not an option here")
    return answer


def _read(value: Any, actions: Collection[Action]) -> ApprovalAnswer:
    if isinstance(value, bool):
        return ApprovalAnswer(action="approve" if value else "reject")
    if isinstance(value, dict):
        return _read_dict(value, actions)
    if not isinstance(value, str):
        raise _unclear(value, actions, f"{type(value).__name__} values are not answers")
    text = value.strip()
    if text[:1] in ("{", "[", '"'):
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _unclear(value, actions, f"it starts like JSON but is not valid JSON ({exc})") from exc
        if isinstance(decoded, str) and decoded.strip()[:1] in ("{", "[", '"'):
            raise _unclear(value, actions, "JSON inside a JSON string is not read")
        return _read(decoded, actions)
    match = _TYPED.fullmatch(text)
    action = _WORDS.get(match.group(1).lower()) if match else None
    if match is None or action is None:
        raise _unclear(value, actions)
    rest = match.group(2).strip()
    if action == "approve":
        if rest:
            raise _unclear(value, actions, "an approval takes nothing after it")
        return ApprovalAnswer(action="approve")
    if action == "reject":
        return ApprovalAnswer(action="reject", reason=rest or None)
    if not rest:
        raise _unclear(value, actions, "an edit needs the new text after it")
    return ApprovalAnswer(action="edit", text=rest)


def _read_dict(value: dict[Any, Any], actions: Collection[Action]) -> ApprovalAnswer:
    unknown = sorted(str(k) for k in value if k not in _DICT_KEYS)
    if unknown:
        raise _unclear(
            value, actions, f"unknown key(s) {', '.join(unknown)}; the keys are {', '.join(sorted(_DICT_KEYS))}"
        )
    action = value.get("action")
    if action not in ACTIONS:
        raise _unclear(value, actions, f"'action' must be one of {', '.join(a for a in ACTIONS if a in actions)}")
    reason, text, rater = value.get("reason"), value.get("text"), value.get("rater")
    for key, field in (("reason", reason), ("text", text), ("rater", rater)):
        if field is not None and not isinstance(field, str):
            raise _unclear(value, actions, f"{key!r} must be a string")
    if action == "edit" and not (text and text.strip()):
        raise _unclear(value, actions, "an edit needs a non-empty 'text'")
    if action != "edit" and text is not None:
        raise _unclear(value, actions, "only an edit takes 'text'")
    if action != "reject" and reason is not None:
        raise _unclear(value, actions, "only a rejection takes a 'reason'")
    return ApprovalAnswer(action=action, reason=(reason or "").strip() or None, text=text, rater=rater)


def _unclear(value: Any, actions: Collection[Action], why: str | None = None) -> InvalidResumeError:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    shown = shown if len(shown) <= 80 else shown[:79] + "…"
    detail = f" ({why})" if why else ""
    return InvalidResumeError(f"unclear answer {shown!r}{detail}; answer {accepted_forms(actions)}")
