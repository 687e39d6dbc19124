"""Prompt templates with ``{variables}``: ``PromptTemplate`` for text, ``ChatPromptTemplate`` for messages."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from tether.errors import TetherError
from tether.messages import (
    MESSAGE_ROLES,
    BaseMessage,
    HumanMessage,
    convert_to_messages,
    message_class,
    message_text,
)
from tether.prompts._chain import Pipeable

__all__ = [
    "ChatPromptTemplate",
    "ChatPromptValue",
    "MessagesPlaceholder",
    "MissingVariableError",
    "PromptTemplate",
    "StringPromptValue",
    "template_variables",
]

_TEMPLATE_ROLES = tuple(r for r in MESSAGE_ROLES if r != "tool")  # a tool result needs its call's id


class MissingVariableError(TetherError, KeyError):
    """A template was formatted without a value for one of its variables."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


def template_variables(template: str) -> list[str]:
    """The names a template uses, in order of first use: ``"{a} {b} {a}"`` → ``["a", "b"]``.

    Attribute access and indexing (``{user.name}``, ``{items[0]}``) are refused, as in LangChain:
    a template is text, maybe from a user, and must not reach into the objects it is given.
    """
    names: list[str] = []
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template {template!r}: {exc} (write {{{{ and }}}} for literal braces)") from exc
    for _, field, _, _ in fields:
        if field is None:
            continue
        if not field or field.isdigit():
            raise ValueError(f"template {template!r} has a positional field {{{field}}}; name every variable")
        if any(c in field for c in ".[]"):
            raise ValueError(
                f"template {template!r}: {{{field}}} reaches into a value; use plain names and pass the value itself"
            )
        root = field
        if root not in names:
            names.append(root)
    return names


def _check(needed: Sequence[str], values: Mapping[str, Any], what: str) -> None:
    missing = [name for name in needed if name not in values]
    if missing:
        given = ", ".join(sorted(values)) or "nothing"
        raise MissingVariableError(
            f"{what} is missing {'variables' if len(missing) > 1 else 'variable'} "
            f"{', '.join(repr(m) for m in missing)}: it needs {', '.join(needed)}; got {given}"
        )


def _resolved(partials: Mapping[str, Any]) -> dict[str, Any]:
    """Partial values may be functions, called at format time (the date, say), as in LangChain."""
    return {k: v() if callable(v) else v for k, v in partials.items()}


class StringPromptValue(str):
    """A formatted text prompt (a ``str``); ``to_messages()`` makes it one human message."""

    __slots__ = ()

    def to_string(self) -> str:
        return str(self)

    def to_messages(self) -> list[BaseMessage]:
        return [HumanMessage(content=str(self))]


class ChatPromptValue(list[BaseMessage]):
    """Formatted chat messages (a ``list``), with LangChain's ``to_messages()`` / ``to_string()``."""

    def to_messages(self) -> list[BaseMessage]:
        return list(self)

    def to_string(self) -> str:
        return "\n".join(f"{m.role.capitalize()}: {message_text(m)}" for m in self)


class PromptTemplate(Pipeable):
    """``PromptTemplate.from_template("Summarise {text} in {n} words").format(text=…, n=…)``."""

    def __init__(self, template: str, *, partial_variables: Mapping[str, Any] | None = None) -> None:
        self.template = template
        self.partial_variables = dict(partial_variables or {})
        self._variables = template_variables(template)

    @classmethod
    def from_template(cls, template: str, *, partial_variables: Mapping[str, Any] | None = None) -> PromptTemplate:
        return cls(template, partial_variables=partial_variables)

    @property
    def input_variables(self) -> list[str]:
        """Variables still to be given, sorted (as LangChain lists them)."""
        return sorted(v for v in self._variables if v not in self.partial_variables)

    def partial(self, **values: Any) -> PromptTemplate:
        return PromptTemplate(self.template, partial_variables={**self.partial_variables, **values})

    def format(self, **values: Any) -> str:
        merged = {**_resolved(self.partial_variables), **values}
        _check(self._variables, merged, "PromptTemplate")
        return self.template.format(**merged)

    def invoke(self, input: Mapping[str, Any] | None = None, config: Any = None) -> StringPromptValue:
        return StringPromptValue(self.format(**dict(input or {})))

    async def ainvoke(self, input: Mapping[str, Any] | None = None, config: Any = None) -> StringPromptValue:
        return self.invoke(input)

    def __repr__(self) -> str:
        return f"PromptTemplate({self.template!r})"


class MessagesPlaceholder:
    """Where a list of messages (a conversation, say) goes in a ``ChatPromptTemplate``."""

    def __init__(self, variable_name: str, *, optional: bool = False) -> None:
        self.variable_name = variable_name
        self.optional = optional

    def format_messages(self, values: Mapping[str, Any]) -> list[BaseMessage]:
        if self.variable_name not in values:
            if self.optional:
                return []
            raise MissingVariableError(
                f"ChatPromptTemplate is missing variable {self.variable_name!r}: the messages placeholder needs a "
                f"list of messages; got {', '.join(sorted(values)) or 'nothing'}"
            )
        value = values[self.variable_name]
        if value is None and self.optional:
            return []
        try:
            return convert_to_messages(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"placeholder {self.variable_name!r} must hold messages: {exc}") from exc


class _MessageTemplate:
    def __init__(self, cls: type[BaseMessage], template: str) -> None:
        self.cls = cls
        self.prompt = PromptTemplate(template)

    def format_messages(self, values: Mapping[str, Any]) -> list[BaseMessage]:
        _check(self.prompt._variables, values, "ChatPromptTemplate")
        return [self.cls(content=self.prompt.format(**values))]


_Part = _MessageTemplate | MessagesPlaceholder | BaseMessage


def _part(item: Any) -> _Part:
    if isinstance(item, (MessagesPlaceholder, BaseMessage, _MessageTemplate)):
        return item
    if isinstance(item, str):
        return _MessageTemplate(HumanMessage, item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        role, text = item
        if role == "placeholder":
            names = template_variables(str(text))
            if len(names) != 1 or str(text).strip() != "{" + names[0] + "}":
                raise ValueError(f"a placeholder is written ('placeholder', '{{name}}'), got {item!r}")
            return MessagesPlaceholder(names[0], optional=True)  # LangChain makes tuple placeholders optional
        cls = message_class(role) if role in _TEMPLATE_ROLES else None
        if cls is None:
            raise ValueError(f"unknown message role {role!r}; use one of {', '.join(_TEMPLATE_ROLES)} or 'placeholder'")
        return _MessageTemplate(cls, str(text))
    raise TypeError(
        f"cannot use {item!r} in a ChatPromptTemplate: give (role, template) tuples, messages or MessagesPlaceholder"
    )


class ChatPromptTemplate(Pipeable):
    """Messages with ``{variables}``::

        prompt = ChatPromptTemplate.from_messages([
            ("system", "You are a {role}."),
            MessagesPlaceholder("history"),          # or ("placeholder", "{history}")
            ("human", "{question}"),
        ])
        prompt.invoke({"role": "librarian", "history": [...], "question": "…"})  # a list of messages

    Message objects in the list are kept as they are; their text is not a template.
    """

    def __init__(self, messages: Sequence[Any], *, partial_variables: Mapping[str, Any] | None = None) -> None:
        self.messages: list[_Part] = [_part(m) for m in messages]
        self.partial_variables = dict(partial_variables or {})

    @classmethod
    def from_messages(cls, messages: Sequence[Any]) -> ChatPromptTemplate:
        return cls(messages)

    @classmethod
    def from_template(cls, template: str) -> ChatPromptTemplate:
        return cls([("human", template)])

    def _needed(self) -> list[str]:
        """Every variable the messages need, in order of first use; optional placeholders are left out."""
        names: list[str] = []
        for part in self.messages:
            if isinstance(part, _MessageTemplate):
                names += [v for v in part.prompt._variables if v not in names]
            elif isinstance(part, MessagesPlaceholder) and not part.optional and part.variable_name not in names:
                names.append(part.variable_name)
        return names

    @property
    def input_variables(self) -> list[str]:
        """Variables still to be given, sorted."""
        return sorted(set(self._needed()) - set(self.partial_variables))

    def partial(self, **values: Any) -> ChatPromptTemplate:
        clone = ChatPromptTemplate([], partial_variables={**self.partial_variables, **values})
        clone.messages = list(self.messages)
        return clone

    def format_messages(self, **values: Any) -> list[BaseMessage]:
        merged = {**_resolved(self.partial_variables), **values}
        _check(self._needed(), merged, "ChatPromptTemplate")  # every missing name at once, not the first
        out: list[BaseMessage] = []
        for part in self.messages:
            out.extend([part] if isinstance(part, BaseMessage) else part.format_messages(merged))
        return out

    def invoke(self, input: Mapping[str, Any] | None = None, config: Any = None) -> ChatPromptValue:
        """The messages for ``input``; a graph state works too (its ``messages`` fill a placeholder)."""
        return ChatPromptValue(self.format_messages(**dict(input or {})))

    async def ainvoke(self, input: Mapping[str, Any] | None = None, config: Any = None) -> ChatPromptValue:
        return self.invoke(input)

    def __add__(self, other: Any) -> ChatPromptTemplate:
        extra = other.messages if isinstance(other, ChatPromptTemplate) else [_part(other)]
        clone = self.partial()
        clone.messages += extra
        return clone

    def __repr__(self) -> str:
        return f"ChatPromptTemplate({len(self.messages)} messages, variables={self.input_variables})"
