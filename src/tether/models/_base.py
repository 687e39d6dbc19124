"""The chat-model protocol every client implements, and what it builds on.

A chat model turns a list of messages into an ``AIMessage``. Subclasses implement
``_generate`` (and, for real token streaming, ``_stream``); this class adds the rest:
message coercion, ``bind_tools``, ``with_structured_output`` and the async twins.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from tether._context import message_sink
from tether.errors import TetherError
from tether.messages import AIMessage, AIMessageChunk, BaseMessage, MessageLike, convert_to_messages
from tether.messages._chunk import as_chunk
from tether.messages._types import new_message_id

__all__ = [
    "BaseChatModel",
    "ChatModelError",
    "ModelCallOptions",
    "OutputParserError",
    "StructuredOutput",
    "merge_chunks",
    "tool_schema",
]

M = TypeVar("M", bound=BaseModel)


class ChatModelError(TetherError):
    """A chat model could not answer: bad key, unknown model, malformed reply, server down…"""


class OutputParserError(ChatModelError, ValueError):
    """The model's reply did not match the expected structure; says which fields failed."""


@dataclass(frozen=True, slots=True)
class ModelCallOptions:
    """What ``bind_tools`` and friends fix for every call of a model."""

    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | bool | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def tool_schema(tool: Any) -> dict[str, Any]:
    """The OpenAI-style function schema of a tool: a Tether tool, a pydantic model, a typed
    function, or an already-formed ``{"type": "function", "function": {...}}`` dict."""
    if isinstance(tool, dict):
        return tool if "function" in tool else {"type": "function", "function": tool}
    if hasattr(tool, "json_schema"):
        return {"type": "function", "function": tool.json_schema()}
    if isinstance(tool, type) and issubclass(tool, BaseModel):
        return {
            "type": "function",
            "function": {
                "name": tool.__name__,
                "description": (tool.__doc__ or "").strip(),
                "parameters": tool.model_json_schema(),
            },
        }
    if callable(tool):
        from tether.tools import tool as make_tool

        return tool_schema(make_tool(tool))
    raise TypeError(f"cannot describe {tool!r} as a tool: pass a @tool function, a pydantic model or a dict")


def merge_chunks(chunks: Iterable[AIMessage], sink: Callable[[AIMessage], None] | None = None) -> AIMessage:
    """One ``AIMessage`` from streamed chunks (passing each to ``sink`` first, as an
    ``AIMessageChunk`` with the shared id)."""
    message_id: str | None = None
    texts: list[str] = []
    tool_calls: list[Any] = []
    usage = None
    metadata: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for chunk in chunks:
        message_id = message_id or chunk.id or new_message_id()
        if chunk.id != message_id:
            chunk = chunk.model_copy(update={"id": message_id})
        if sink is not None:
            sink(as_chunk(chunk))
        texts.append(chunk.text)
        tool_calls += chunk.tool_calls
        usage = chunk.usage_metadata or usage
        metadata.update(chunk.response_metadata)
        for key, value in chunk.additional_kwargs.items():  # e.g. reasoning text arrives in pieces too
            both_text = isinstance(value, str) and isinstance(extra.get(key), str)
            extra[key] = extra[key] + value if both_text else value
    return AIMessage(
        content="".join(texts),
        id=message_id,
        tool_calls=tool_calls,
        usage_metadata=usage,
        response_metadata=metadata,
        additional_kwargs=extra,
    )


class BaseChatModel(ABC):
    """Subclass and implement ``_generate``; ``invoke`` takes messages in any accepted form."""

    options: ModelCallOptions = ModelCallOptions()
    model_name: str = "model"

    @abstractmethod
    def _generate(self, messages: list[BaseMessage], options: ModelCallOptions) -> AIMessage:
        """One reply to ``messages``."""

    def _stream(self, messages: list[BaseMessage], options: ModelCallOptions) -> Iterator[AIMessage]:
        """Reply in pieces (``AIMessageChunk``s, or ``AIMessage``s, whose contents concatenate);
        default: one piece."""
        yield self._generate(messages, options)

    async def _agenerate(self, messages: list[BaseMessage], options: ModelCallOptions) -> AIMessage:
        return await asyncio.to_thread(self._generate, messages, options)

    # -- public face -------------------------------------------------------------------
    def invoke(self, messages: MessageLike | Sequence[MessageLike], config: Any = None, **kwargs: Any) -> AIMessage:
        """One reply. Inside a graph run with ``stream_mode="messages"``, the reply is streamed to
        the caller token by token as it is produced, and the whole message is returned."""
        msgs, options = convert_to_messages(messages), self._options(kwargs)
        sink = message_sink()
        if sink is None:
            return self._generate(msgs, options)
        return merge_chunks(self._stream(msgs, options), sink)

    async def ainvoke(
        self, messages: MessageLike | Sequence[MessageLike], config: Any = None, **kwargs: Any
    ) -> AIMessage:
        if message_sink() is not None:
            return await asyncio.to_thread(self.invoke, messages, config, **kwargs)  # the context goes along
        return await self._agenerate(convert_to_messages(messages), self._options(kwargs))

    def stream(
        self, messages: MessageLike | Sequence[MessageLike], config: Any = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        """The reply in ``AIMessageChunk``s, as they are produced; ``+`` puts them together."""
        for chunk in self._stream(convert_to_messages(messages), self._options(kwargs)):
            yield as_chunk(chunk)

    async def _astream(self, messages: list[BaseMessage], options: ModelCallOptions) -> AsyncIterator[AIMessage]:
        """Async streaming; default: the sync stream, in a worker thread, handed over at the end."""
        for chunk in await asyncio.to_thread(lambda: list(self._stream(messages, options))):
            yield chunk

    async def astream(
        self, messages: MessageLike | Sequence[MessageLike], config: Any = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        async for chunk in self._astream(convert_to_messages(messages), self._options(kwargs)):
            yield as_chunk(chunk)

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | bool | dict[str, Any] | None = None
    ) -> BaseChatModel:
        """The same model, offered ``tools`` on every call (OpenAI function-calling schema)."""
        return self._with(replace(self.options, tools=tuple(tool_schema(t) for t in tools), tool_choice=tool_choice))

    def with_structured_output(self, schema: type[M]) -> StructuredOutput[M]:
        """A runnable whose ``invoke`` returns an instance of ``schema`` (a pydantic model)."""
        return StructuredOutput(self, schema)

    def _structured_options(self, schema: type[BaseModel]) -> ModelCallOptions:
        """How this model is asked for ``schema``: by default a forced call of a tool shaped like
        it, plus the JSON schema as ``response_format`` (a client sends what its server takes)."""
        return replace(
            self.options,
            tools=(tool_schema(schema),),
            tool_choice={"type": "function", "function": {"name": schema.__name__}},
            response_format={
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
            },
        )

    def _options(self, kwargs: dict[str, Any]) -> ModelCallOptions:
        return replace(self.options, extra={**self.options.extra, **kwargs}) if kwargs else self.options

    def _with(self, options: ModelCallOptions) -> BaseChatModel:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.options = options
        return clone


class StructuredOutput(Generic[M]):
    """A model asked to answer with JSON matching a pydantic model, validated on the way out."""

    def __init__(self, model: BaseChatModel, schema: type[M]) -> None:
        self.schema = schema
        self.model = model._with(model._structured_options(schema))

    def invoke(self, messages: MessageLike | Sequence[MessageLike], config: Any = None) -> M:
        return self.parse(self.model.invoke(messages))

    async def ainvoke(self, messages: MessageLike | Sequence[MessageLike], config: Any = None) -> M:
        return self.parse(await self.model.ainvoke(messages))

    def parse(self, reply: AIMessage) -> M:
        """The reply's tool-call arguments (or its JSON text) validated against the schema."""
        refusal = reply.additional_kwargs.get("refusal")
        if refusal and not reply.tool_calls and not reply.text.strip():
            raise OutputParserError(f"the model refused to answer as {self.schema.__name__}: {refusal}")
        if reply.tool_calls:
            data: Any = reply.tool_calls[0].get("args", {})
        else:
            text = reply.text.strip()
            if text.startswith("```"):
                text = text.strip("`").removeprefix("json").strip()
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise OutputParserError(
                    f"the model's reply is not JSON for {self.schema.__name__}: {exc}; reply was {reply.text[:200]!r}"
                ) from exc
        try:
            return self.schema.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise OutputParserError(f"the model's reply does not match {self.schema.__name__}: {problems}") from exc
