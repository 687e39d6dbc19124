"""``ChatOllama``: Ollama's native ``/api/chat``.

Ollama also speaks the OpenAI API under ``/v1`` (use ``ChatOpenAI`` for that); the native API
is what gives model options (``num_ctx``, ``seed``…), ``keep_alive``, ``format`` with a JSON
schema, and token counts on every reply. Streams are NDJSON: one JSON object a line, the
last with ``"done": true``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, closing
from typing import Any
from urllib.parse import urlparse

from tether.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from tether.messages._types import UsageMetadata
from tether.models._base import ModelCallOptions
from tether.models._http import HTTPChatModel, HTTPTransport, ServerError
from tether.models._limits import DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_RESPONSE_BYTES, DeadlineOption

__all__ = ["DEFAULT_OLLAMA_HOST", "ChatOllama"]

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
_PATH = "/api/chat"
# request fields that sit beside "options" rather than inside it
_TOP_LEVEL = frozenset({"keep_alive", "think", "format"})


class ChatOllama(HTTPChatModel):
    """A model served by Ollama (``ollama serve``), through its native chat API.

    ``base_url`` defaults to ``$OLLAMA_HOST`` (``host:port`` or a URL, as the ``ollama`` CLI
    reads it), then to ``http://127.0.0.1:11434``. Other keywords are model options sent in
    ``"options"`` (``temperature``, ``num_ctx``, ``num_predict``, ``seed``, ``stop``…), except
    ``keep_alive`` and ``think``, which Ollama takes at the top level.

    Ollama has no ``tool_choice``: ``"none"`` leaves the tools out, anything else offers them.
    Structured output uses Ollama's ``format`` (a JSON schema the answer is constrained to).
    ``max_response_bytes``, ``max_line_bytes`` and ``deadline`` bound every call: see
    ``HTTPTransport`` and docs/models.md.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        timeout: float | None = 300.0,
        max_retries: int = 2,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        deadline: DeadlineOption = "auto",
        **options: Any,
    ) -> None:
        self.model_name = model
        self.model_options = options
        self._transport = HTTPTransport(
            base_url=_host(base_url or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST),
            model=model,
            provider="Ollama",
            # generous: the first call waits for the model to load, and CPUs generate slowly
            timeout=timeout,
            max_retries=max_retries,
            max_response_bytes=max_response_bytes,
            max_line_bytes=max_line_bytes,
            deadline=deadline,
            auth_hint="Ollama itself has no keys: a proxy in front of it refused the request",
            not_found_hint=(
                f"the model is not installed (run `ollama pull {model}`), "
                "or base_url is not the server's root (it should not end in /api or /v1)"
            ),
        )

    # -- calls -------------------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], options: ModelCallOptions) -> AIMessage:
        data = self._transport.post(_PATH, self._body(messages, options, stream=False))
        return self._parse_reply(data)

    async def _agenerate(self, messages: list[BaseMessage], options: ModelCallOptions) -> AIMessage:
        data = await self._transport.apost(_PATH, self._body(messages, options, stream=False))
        return self._parse_reply(data)

    def _stream(self, messages: list[BaseMessage], options: ModelCallOptions) -> Iterator[AIMessage]:
        stream = _StreamState(self)
        # closing() ends the HTTP response at once, not whenever the generator is collected
        with closing(self._transport.stream_lines(_PATH, self._body(messages, options, stream=True))) as lines:
            for line in lines:
                yield from stream.feed(line)
                if stream.done:
                    break
        yield stream.finish()

    async def _astream(self, messages: list[BaseMessage], options: ModelCallOptions) -> AsyncIterator[AIMessage]:
        stream = _StreamState(self)
        async with aclosing(self._transport.astream_lines(_PATH, self._body(messages, options, stream=True))) as lines:
            async for line in lines:
                for chunk in stream.feed(line):
                    yield chunk
                if stream.done:
                    break
        yield stream.finish()

    # -- request -----------------------------------------------------------------------
    def _body(self, messages: list[BaseMessage], options: ModelCallOptions, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "messages": _to_wire(messages), "stream": stream}
        model_options: dict[str, Any] = {}
        for key, value in {**self.model_options, **options.extra}.items():
            if value is None:
                continue
            if key in _TOP_LEVEL:
                body[key] = value
            elif key == "options" and isinstance(value, dict):
                model_options.update(value)
            else:
                model_options[key] = value
        if model_options:
            body["options"] = model_options
        schema = _format(options.response_format)
        if schema is not None:
            body.setdefault("format", schema)
        # Ollama cannot force a tool call, so with_structured_output (a forced call plus a
        # schema) relies on "format" alone; offering the tool too would let the model skip it
        forced = isinstance(options.tool_choice, dict) and schema is not None
        if options.tools and options.tool_choice != "none" and not forced:
            body["tools"] = list(options.tools)
        return body

    # -- reply -------------------------------------------------------------------------
    def _parse_reply(self, data: Any) -> AIMessage:
        if not isinstance(data, dict):
            raise self._transport.malformed("a body that is not a JSON object", data)
        if "error" in data:
            raise ServerError(f"Ollama reported an error: {data['error']}", url=self.base_url)
        message = data.get("message")
        if not isinstance(message, dict):
            raise self._transport.malformed("no 'message' object", data)
        return AIMessage(
            content=message.get("content") or "",
            id=_new_id("run"),
            tool_calls=self._tool_calls(message.get("tool_calls")),
            usage_metadata=_usage(data),
            response_metadata=_metadata(data),
            additional_kwargs=_extras(message),
        )

    def _tool_calls(self, raw: Any) -> list[ToolCall]:
        if not raw:
            return []
        if not isinstance(raw, list):
            raise self._transport.malformed("'tool_calls' that is not a list", raw)
        calls = []
        for i, call in enumerate(raw):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not function.get("name"):
                raise self._transport.malformed(f"tool call #{i} without a function name", call)
            name = function["name"]
            args = function.get("arguments") or {}
            if isinstance(args, str):  # Ollama sends an object; tolerate a JSON string
                try:
                    args = json.loads(args)
                except json.JSONDecodeError as exc:
                    raise self._transport.malformed(
                        f"arguments for tool {name!r} that are not valid JSON ({exc}): {args[:200]!r}"
                    ) from exc
            if not isinstance(args, dict):
                raise self._transport.malformed(f"arguments for tool {name!r} that are not a JSON object", args)
            # older Ollama versions give calls no id; ToolMessages need one to answer to
            calls.append(ToolCall(name=name, args=args, id=call.get("id") or _new_id("call"), type="tool_call"))
        return calls


class _StreamState:
    """What an NDJSON stream has said so far; tool calls and counts go on the final chunk."""

    def __init__(self, model: ChatOllama) -> None:
        self.model = model
        self.id = _new_id("run")  # Ollama gives replies no id; one per reply lets chunks be merged
        self.calls: list[ToolCall] = []
        self.last: dict[str, Any] = {}
        self.done = False

    def feed(self, line: str) -> Iterator[AIMessage]:
        if not line.strip() or self.done:
            return
        chunk = self.model._transport.parse_json(line)
        if not isinstance(chunk, dict):
            raise self.model._transport.malformed("a stream line that is not a JSON object", chunk)
        if "error" in chunk:
            raise ServerError(
                f"Ollama reported an error in the middle of the stream: {chunk['error']}", url=self.model.base_url
            )
        message = chunk.get("message") or {}
        if not isinstance(message, dict):
            raise self.model._transport.malformed("a stream line whose 'message' is not an object", chunk)
        self.calls.extend(self.model._tool_calls(message.get("tool_calls")))
        extras = _extras(message)
        if message.get("content") or extras:
            yield AIMessageChunk(content=message.get("content") or "", id=self.id, additional_kwargs=extras)
        if chunk.get("done"):
            self.done = True
            self.last = chunk

    def finish(self) -> AIMessageChunk:
        if not self.done:
            raise self.model._transport.malformed('a stream that ended before its "done": true line')
        return AIMessageChunk(
            content="",
            id=self.id,
            tool_calls=self.calls,
            usage_metadata=_usage(self.last),
            response_metadata=_metadata(self.last),
        )


# -- wire format ----------------------------------------------------------------------
def _to_wire(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}  # tool_call_id -> tool name, for Ollama's "tool_name"
    wire: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            wire.append({"role": "system", "content": message.text})
        elif isinstance(message, HumanMessage):
            item: dict[str, Any] = {"role": "user", "content": message.text}
            images = _images(message)
            if images:
                item["images"] = images
            wire.append(item)
        elif isinstance(message, AIMessage):
            item = {"role": "assistant", "content": message.text}
            if message.tool_calls:
                item["tool_calls"] = [
                    {"function": {"name": call["name"], "arguments": call.get("args") or {}}}
                    for call in message.tool_calls
                ]
                names.update({call_id: call["name"] for call in message.tool_calls if (call_id := call.get("id"))})
            wire.append(item)
        elif isinstance(message, ToolMessage):
            item = {"role": "tool", "content": message.text, "tool_call_id": message.tool_call_id}
            tool_name = message.name or names.get(message.tool_call_id)
            if tool_name:
                item["tool_name"] = tool_name
            wire.append(item)
        elif isinstance(message, ChatMessage):
            wire.append({"role": message.role, "content": message.text})
        else:
            raise TypeError(f"cannot send a {type(message).__name__} to Ollama")
    return wire


def _images(message: BaseMessage) -> list[str]:
    """Base64 images from content blocks: OpenAI's data-URL ``image_url`` or ``{"type": "image"}``."""
    if isinstance(message.content, str):
        return []
    images = []
    for block in message.content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "image_url":
            url = block["image_url"]["url"] if isinstance(block.get("image_url"), dict) else block.get("image_url")
            if isinstance(url, str) and url.startswith("data:"):
                images.append(url.partition(",")[2])
        elif block.get("type") == "image" and isinstance(block.get("data") or block.get("base64"), str):
            images.append(block.get("data") or block["base64"])
    return images


def _format(response_format: dict[str, Any] | None) -> str | dict[str, Any] | None:
    """OpenAI's ``response_format`` as Ollama's ``format``: a JSON schema, or ``"json"``."""
    if not response_format:
        return None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else "json"
    if response_format.get("type") == "json_object":
        return "json"
    return None


def _host(value: str) -> str:
    """``OLLAMA_HOST`` read as the ``ollama`` CLI reads it: a bare ``host`` or ``host:port`` is
    plain HTTP on port 11434 by default; a URL keeps its scheme's own port (a proxy on 443…)."""
    value = value.strip().rstrip("/")
    if "://" in value:
        return value
    value = f"http://{value}"
    return value if urlparse(value).port is not None else f"{value}:11434"


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def _usage(data: dict[str, Any]) -> UsageMetadata | None:
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    input_tokens = int(data.get("prompt_eval_count") or 0)
    output_tokens = int(data.get("eval_count") or 0)
    return UsageMetadata(
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
    )


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "model_provider": "ollama",
        "model": data.get("model"),
        "model_name": data.get("model"),  # LangChain's key
        "finish_reason": data.get("done_reason"),
        "created_at": data.get("created_at"),
        # nanoseconds, as Ollama reports them: where the time went (loading vs generating)
        **{key: data[key] for key in ("total_duration", "load_duration", "eval_duration") if key in data},
    }
    return {k: v for k, v in meta.items() if v is not None}


def _extras(message: dict[str, Any]) -> dict[str, Any]:
    # thinking models (think=True) send their reasoning apart from the answer
    return {"reasoning_content": message["thinking"]} if message.get("thinking") else {}
