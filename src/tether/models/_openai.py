"""``ChatOpenAI``: the OpenAI chat-completions API, which most model servers also speak.

vLLM, llama.cpp's server, LM Studio, Ollama's ``/v1`` and OpenAI itself all answer
``POST {base_url}/chat/completions``; only the base URL (and whether a key is needed) differs.
The wire format is written out here by hand: the ``openai`` SDK is not a dependency.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, closing
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel

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
from tether.models._http import AuthenticationError, HTTPChatModel, HTTPTransport, ServerError, SSEDecoder
from tether.models._limits import DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_RESPONSE_BYTES, DeadlineOption

__all__ = ["DEFAULT_OPENAI_BASE_URL", "ChatOpenAI"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
_PATH = "/chat/completions"
_TOOL_CHOICES = frozenset({"auto", "none", "required"})


class ChatOpenAI(HTTPChatModel):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``api_key`` defaults to ``$OPENAI_API_KEY`` and ``base_url`` to ``$OPENAI_BASE_URL``, then to
    OpenAI's own API. Local servers (vLLM, llama.cpp, LM Studio, Ollama) need only ``base_url``.
    Any other keyword (``top_p``, ``seed``, ``stop``, ``reasoning_effort``…) goes into every
    request body as is; keywords given to ``invoke`` override them for that call. ``max_tokens``
    is sent as ``max_completion_tokens``, the name OpenAI has used since September 2024 (and the
    only one its reasoning models accept), as LangChain's ``ChatOpenAI`` sends it.

    ``max_response_bytes``, ``max_line_bytes`` and ``deadline`` bound every call: see
    ``HTTPTransport`` and docs/models.md.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        deadline: DeadlineOption = "auto",
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> None:
        self.model_name = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or None
        url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra = extra
        self._transport = HTTPTransport(
            base_url=url,
            model=model,
            provider="OpenAI" if urlparse(url).hostname == "api.openai.com" else "the OpenAI-compatible server",
            headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else None,
            timeout=timeout,
            max_retries=max_retries,
            max_response_bytes=max_response_bytes,
            max_line_bytes=max_line_bytes,
            deadline=deadline,
            auth_hint="bad or missing API key, set OPENAI_API_KEY or pass api_key=",
            not_found_hint=(
                "no such model on this server, or base_url is not the API root "
                "(OpenAI-compatible servers usually want it to end in /v1)"
            ),
        )

    # -- calls -------------------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], options: ModelCallOptions) -> AIMessage:
        self._check_key()
        data = self._transport.post(_PATH, self._body(messages, options, stream=False))
        return self._parse_reply(data)

    async def _agenerate(self, messages: list[BaseMessage], options: ModelCallOptions) -> AIMessage:
        self._check_key()
        data = await self._transport.apost(_PATH, self._body(messages, options, stream=False))
        return self._parse_reply(data)

    def _stream(self, messages: list[BaseMessage], options: ModelCallOptions) -> Iterator[AIMessage]:
        self._check_key()
        stream = _StreamState(self)
        decoder = SSEDecoder()
        # closing() ends the HTTP response at once, not whenever the generator is collected
        with closing(self._transport.stream_lines(_PATH, self._body(messages, options, stream=True))) as lines:
            for line in lines:
                event = decoder.feed(line)
                if event is not None:
                    yield from stream.feed(event)
                if stream.done:
                    break
        yield from stream.feed(decoder.flush() or "")
        yield stream.finish()

    async def _astream(self, messages: list[BaseMessage], options: ModelCallOptions) -> AsyncIterator[AIMessage]:
        self._check_key()
        stream = _StreamState(self)
        decoder = SSEDecoder()
        async with aclosing(self._transport.astream_lines(_PATH, self._body(messages, options, stream=True))) as lines:
            async for line in lines:
                event = decoder.feed(line)
                if event is not None:
                    for chunk in stream.feed(event):
                        yield chunk
                if stream.done:
                    break
        for chunk in stream.feed(decoder.flush() or ""):
            yield chunk
        yield stream.finish()

    def _check_key(self) -> None:
        # OpenAI's own API always wants a key: say so before a round trip. Local servers may not.
        if not self.api_key and urlparse(self.base_url).hostname == "api.openai.com":
            raise AuthenticationError(
                "no API key for api.openai.com: set OPENAI_API_KEY or pass api_key= "
                "(or point base_url / OPENAI_BASE_URL at a local OpenAI-compatible server)",
                url=self.base_url,
            )

    # -- request -----------------------------------------------------------------------
    def _body(self, messages: list[BaseMessage], options: ModelCallOptions, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "messages": [_to_wire(m) for m in messages]}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_completion_tokens"] = self.max_tokens
        body.update(self.extra)
        if options.tools:
            body["tools"] = list(options.tools)
        tool_choice = _tool_choice(options.tool_choice)
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
        # with_structured_output asks for a forced tool call *and* a JSON schema; servers such as
        # llama.cpp refuse the pair, and the forced call alone already yields schema-shaped JSON
        if options.response_format is not None and not (options.tools and isinstance(tool_choice, dict)):
            body["response_format"] = options.response_format
        body.update(options.extra)
        if "max_tokens" in body:  # the deprecated name, given per call or in **extra
            body["max_completion_tokens"] = body.pop("max_tokens")
        body["stream"] = stream
        if stream:
            body.setdefault("stream_options", {"include_usage": True})  # usage arrives in the last chunk
        else:
            body.pop("stream_options", None)
        return body

    def _structured_options(self, schema: type[BaseModel]) -> ModelCallOptions:
        """Structured Outputs, as LangChain's and the SDK's default: a strict ``json_schema``
        ``response_format`` and no tools. Servers that ignore ``tool_choice`` (Ollama's ``/v1``)
        still constrain the answer to the schema this way."""
        return replace(
            self.options,
            tools=(),
            tool_choice=None,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": schema.__name__,
                    "schema": strict_json_schema(schema.model_json_schema()),
                    "strict": True,
                },
            },
        )

    # -- reply -------------------------------------------------------------------------
    def _parse_reply(self, data: Any) -> AIMessage:
        if not isinstance(data, dict):
            raise self._transport.malformed("a body that is not a JSON object", data)
        if "error" in data:  # some servers answer 200 with an error body
            raise ServerError(f"the OpenAI-compatible server reported an error: {data['error']}", url=self.base_url)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise self._transport.malformed("no 'choices' list (or an empty one)", data)
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise self._transport.malformed("no 'message' in its first choice", data)
        raw_calls = message.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise self._transport.malformed("'tool_calls' that is not a list", raw_calls)
        calls = []
        for i, call in enumerate(raw_calls):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not function.get("name"):
                raise self._transport.malformed(f"tool call #{i} without a function name", call)
            calls.append(self._tool_call(function["name"], function.get("arguments"), call.get("id") or f"call_{i}"))
        return AIMessage(
            content=message.get("content") or "",
            id=data.get("id"),
            tool_calls=calls,
            usage_metadata=_usage(data.get("usage")),
            response_metadata=_metadata(data, choice.get("finish_reason")),
            additional_kwargs=_extras(message),
        )

    def _tool_call(self, name: str, arguments: Any, call_id: str) -> ToolCall:
        """A tool call whose ``arguments`` (a JSON string on the wire) are parsed into ``args``."""
        if isinstance(arguments, dict):  # a few servers send the object itself
            args: Any = arguments
        else:
            try:
                args = json.loads(arguments) if arguments else {}
            except json.JSONDecodeError as exc:
                raise self._transport.malformed(
                    f"arguments for tool {name!r} that are not valid JSON ({exc}): {str(arguments)[:200]!r}"
                ) from exc
        if not isinstance(args, dict):
            raise self._transport.malformed(f"arguments for tool {name!r} that are not a JSON object", args)
        return ToolCall(name=name, args=args, id=call_id, type="tool_call")


class _StreamState:
    """What a streamed reply has said so far: text goes out as it arrives; tool-call fragments,
    usage and the finish reason are kept for the final chunk."""

    def __init__(self, model: ChatOpenAI) -> None:
        self.model = model
        self.id: str | None = None
        self.data: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self.usage: UsageMetadata | None = None
        self.calls: dict[int, dict[str, str]] = {}  # index -> {"id", "name", "arguments"}
        self.done = False

    def feed(self, event: str) -> Iterator[AIMessage]:
        """The text chunks in one event's data (none for ``[DONE]`` or tool-call fragments)."""
        if self.done or not event.strip():
            return
        if event.strip() == "[DONE]":
            self.done = True
            return
        chunk = self.model._transport.parse_json(event)
        if not isinstance(chunk, dict):
            raise self.model._transport.malformed("a stream event that is not a JSON object", chunk)
        if "error" in chunk:
            raise ServerError(
                f"the OpenAI-compatible server reported an error in the middle of the stream: {chunk['error']}",
                url=self.model.base_url,
            )
        self.id = self.id or chunk.get("id")
        self.data.update({k: v for k, v in chunk.items() if k in ("model", "system_fingerprint") and v})
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 is not supported: the first choice is the reply
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise self.model._transport.malformed("a 'delta' that is not an object", chunk)
            for part in delta.get("tool_calls") or []:
                if not isinstance(part, dict):
                    raise self.model._transport.malformed("a tool-call fragment that is not an object", chunk)
                self._add_call_part(part)
            extras = _extras(delta)
            if delta.get("content") or extras:
                yield AIMessageChunk(content=delta.get("content") or "", id=self.id, additional_kwargs=extras)

    def _add_call_part(self, part: dict[str, Any]) -> None:
        # the first fragment of a call carries its id and name; later ones add argument text
        call = self.calls.setdefault(int(part.get("index", len(self.calls))), {"id": "", "name": "", "arguments": ""})
        function = part.get("function") or {}
        call["id"] = part.get("id") or call["id"]
        call["name"] = function.get("name") or call["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            call["arguments"] += json.dumps(arguments)
        elif arguments:
            call["arguments"] += arguments

    def finish(self) -> AIMessageChunk:
        """The last chunk: the tool calls assembled, usage and metadata."""
        if not self.done and self.finish_reason is None:
            raise self.model._transport.malformed("a stream that ended before 'data: [DONE]' or a finish_reason")
        calls = []
        for index in sorted(self.calls):
            call = self.calls[index]
            if not call["name"]:
                raise self.model._transport.malformed(f"streamed tool call #{index} without a function name", call)
            calls.append(self.model._tool_call(call["name"], call["arguments"], call["id"] or f"call_{index}"))
        return AIMessageChunk(
            content="",
            id=self.id,
            tool_calls=calls,
            usage_metadata=self.usage,
            response_metadata=_metadata(self.data, self.finish_reason),
        )


# -- wire format ----------------------------------------------------------------------
def _to_wire(message: BaseMessage) -> dict[str, Any]:
    """A Tether message as a chat-completions message."""
    if isinstance(message, SystemMessage):
        wire: dict[str, Any] = {"role": "system", "content": message.text}
    elif isinstance(message, HumanMessage):
        wire = {"role": "user", "content": _content(message)}
    elif isinstance(message, AIMessage):
        wire = {"role": "assistant", "content": message.text}
        if message.tool_calls:
            wire["tool_calls"] = [
                {
                    "id": call.get("id") or f"call_{i}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call.get("args") or {})},
                }
                for i, call in enumerate(message.tool_calls)
            ]
            wire["content"] = message.text or None  # OpenAI's own form for "only tool calls"
    elif isinstance(message, ToolMessage):
        wire = {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    elif isinstance(message, ChatMessage):
        wire = {"role": message.role, "content": _content(message)}
    else:
        raise TypeError(f"cannot send a {type(message).__name__} to a chat-completions API")
    if message.name and not isinstance(message, ToolMessage):
        wire["name"] = message.name
    return wire


def _content(message: BaseMessage) -> str | list[dict[str, Any]]:
    # text stays a string; block lists (images…) pass through, bare strings become text blocks
    if isinstance(message.content, str):
        return message.content
    return [{"type": "text", "text": block} if isinstance(block, str) else block for block in message.content]


def strict_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` in the form OpenAI's strict Structured Outputs accept (what the ``openai`` SDK
    sends for a pydantic model): every object closed (``additionalProperties: false``) and
    listing all its properties as required, and no ``"default": null``."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("type") == "object":
            node.setdefault("additionalProperties", False)
            if isinstance(node.get("properties"), dict):
                node["required"] = list(node["properties"])
        if "default" in node and node["default"] is None:
            del node["default"]
        for key in ("properties", "$defs", "definitions"):
            if isinstance(node.get(key), dict):
                visit(list(node[key].values()))
        for key in ("items", "anyOf", "allOf", "oneOf", "prefixItems"):
            if key in node:
                visit(node[key])

    visit(schema)
    return schema


def _tool_choice(choice: str | bool | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """LangChain's spellings too: ``"any"`` or ``True`` mean ``"required"``, ``False`` means
    nothing said, a bare name forces that tool."""
    if choice is True:
        return "required"
    if choice is None or choice is False:
        return None
    if isinstance(choice, dict) or choice in _TOOL_CHOICES:
        return choice
    if choice == "any":
        return "required"
    return {"type": "function", "function": {"name": choice}}


def _usage(usage: Any) -> UsageMetadata | None:
    if not isinstance(usage, dict):
        return None
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    metadata = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=int(usage.get("total_tokens") or input_tokens + output_tokens),
    )
    # the breakdowns, under LangChain's names: cached prompt tokens, hidden reasoning tokens
    inputs = _details(usage.get("prompt_tokens_details"), {"cached_tokens": "cache_read", "audio_tokens": "audio"})
    outputs = _details(
        usage.get("completion_tokens_details"), {"reasoning_tokens": "reasoning", "audio_tokens": "audio"}
    )
    if inputs:
        metadata["input_token_details"] = inputs
    if outputs:
        metadata["output_token_details"] = outputs
    return metadata


def _details(details: Any, names: dict[str, str]) -> dict[str, int]:
    if not isinstance(details, dict):
        return {}
    return {name: int(details[key]) for key, name in names.items() if isinstance(details.get(key), int)}


def _metadata(data: dict[str, Any], finish_reason: Any) -> dict[str, Any]:
    # "model_name" is LangChain's key, kept so ported code finds it
    meta = {
        "model_provider": "openai",
        "model": data.get("model"),
        "model_name": data.get("model"),
        "finish_reason": finish_reason,
    }
    if data.get("system_fingerprint"):
        meta["system_fingerprint"] = data["system_fingerprint"]
    return {k: v for k, v in meta.items() if v is not None}


def _extras(message: dict[str, Any]) -> dict[str, Any]:
    # reasoning text (vLLM, DeepSeek, llama.cpp) and refusals are kept, apart from the answer
    return {key: message[key] for key in ("reasoning_content", "refusal") if message.get(key)}
