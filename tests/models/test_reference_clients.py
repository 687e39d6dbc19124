"""Tether's chat clients against the reference clients, on the same loopback servers.

Each test sends one conversation through Tether's client and through the reference client
(``langchain-openai``/``openai`` for the chat-completions API, ``langchain-ollama``/``ollama``
for Ollama's native API), to the same ``FakeOpenAI``/``FakeOllama`` that ``conftest.py``
starts, and compares (a) the request bodies each sent, (b) what each made of the same reply,
(c) for errors, that Tether raises its own clear error where the reference raises its own.
The reference clients are test-only dependencies (the ``dev`` extra), never runtime ones.

Bodies are compared as parsed JSON, so key order never matters. The differences accepted
(everything else must be equal):

OpenAI chat completions
  * ``stream_options``: Tether always asks for ``{"include_usage": true}`` when streaming;
    ``langchain-openai`` does so only for OpenAI's own URL, or with ``stream_usage=True``
    (which these tests pass). Servers that predate it ignore the field.
  * Headers: the SDK adds its ``x-stainless-*`` telemetry and its own ``User-Agent``; only
    ``Authorization`` and ``Content-Type`` are compared.
  * Ids: LangChain gives messages its own ``lc_run-…`` id and keeps the server's in
    ``response_metadata["id"]``; Tether uses the server's id as the message id.
  * Response metadata: LangChain also keeps ``token_usage``, ``logprobs`` and ``id``; only the
    keys Tether exposes (``model_name``, ``finish_reason``, ``system_fingerprint``) are compared.
  * Malformed replies: the SDK lets ``json.JSONDecodeError`` through and turns a reply without
    ``choices`` into an empty completion; Tether raises ``MalformedResponseError`` for both.
  * Retries: the SDK ignores ``Retry-After: 0`` and waits its own backoff; both retry the same
    statuses (429, 5xx) and neither retries 401/404.

Ollama native chat
  * ``stream``: ``langchain-ollama`` always streams, even for ``invoke``; Tether asks for one
    JSON reply (``"stream": false``) unless it streams.
  * ``tools``: ``langchain-ollama`` sends ``"tools": []`` when there are none; Tether leaves the
    key out. In tool parameters the ``ollama`` client keeps only ``type``, ``description``,
    ``enum`` and ``items`` of each property; Tether sends the whole JSON schema (``default``
    too), which Ollama's server reads the same way.
  * Assistant messages with tool calls: Tether sends ``"content": ""``, ``langchain-ollama``
    leaves ``content`` out.
  * Tool results: Tether sends ``tool_name`` (the official ``ollama`` client's field, filled in
    from the call answered) and ``tool_call_id``; ``langchain-ollama`` 1.1 sends neither.
  * Images: ``langchain-ollama`` joins text blocks with a leading newline (``"\\nwhat"``);
    Tether joins them as they are. The ``images`` list is the same.
  * ``options``: ``langchain-ollama`` sends ``"options": {}`` when none are set; Tether leaves
    the key out.
  * Tool-call ids: without ids from the server, each client makes its own up (uuid / ``call-…``).
    When the server sends ids (Ollama 0.12 and later), Tether keeps them, so a ``ToolMessage``
    answers to the id Ollama knows; ``langchain-ollama`` 1.1 replaces them with uuids.
  * Retries: the ``ollama`` client never retries (a 429 or 500 is raised at once); Tether
    retries them, so "429 then success" succeeds.
  * Malformed replies: the ``ollama`` client lets ``json.JSONDecodeError`` through; Tether
    raises ``MalformedResponseError``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, TypeVar

import langchain_core.messages as lc_messages
import ollama
import openai
import pytest
from langchain_ollama import ChatOllama as RefChatOllama
from langchain_openai import ChatOpenAI as RefChatOpenAI
from pydantic import BaseModel

import tether.messages as tether_messages
from tether.models import (
    AuthenticationError,
    ChatOllama,
    ChatOpenAI,
    MalformedResponseError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
)

from .conftest import Fail, FakeOllama, FakeOpenAI, Raw, Say

IMAGE = "iVBORw0KGgo="
T = TypeVar("T")


def get_weather(city: str, units: str = "metric") -> str:
    """The weather in a city.

    Args:
        city: The city to look up.
        units: The unit system.
    """
    return f"-3 in {city} ({units})"


class Weather(BaseModel):
    """A weather report."""

    city: str
    celsius: float


def history(ns: ModuleType) -> list[Any]:
    """The same conversation, built from Tether's or LangChain's message classes."""
    return [
        ns.SystemMessage("be brief"),
        ns.HumanMessage("weather in Oslo and Bergen?", name="ann"),
        ns.AIMessage(
            "",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_0abc"},
                {"name": "get_weather", "args": {"city": "Bergen", "units": "metric"}, "id": "call_1abc"},
            ],
        ),
        ns.ToolMessage("-3 and snowing", tool_call_id="call_0abc"),
        ns.ToolMessage("+2 and rain", tool_call_id="call_1abc"),
        ns.AIMessage("Cold in Oslo, wet in Bergen."),
        ns.HumanMessage("and tomorrow?"),
    ]


def multipart(ns: ModuleType) -> list[Any]:
    return [
        ns.HumanMessage(
            [
                {"type": "text", "text": "what"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}},
            ]
        )
    ]


def calls(message: Any) -> list[tuple[str, dict[str, Any], str]]:
    return [(c["name"], c["args"], c["id"]) for c in message.tool_calls]


def usage(message: Any) -> dict[str, Any]:
    """Usage without empty detail dicts (LangChain always sets them, Tether only when given)."""
    return {k: v for k, v in (message.usage_metadata or {}).items() if v != {}}


@pytest.fixture
def close_later() -> Iterator[Callable[[T], T]]:
    """Registers reference clients to close at teardown, so no socket is left to the GC."""
    clients: list[Any] = []

    def register(client: T) -> T:
        clients.append(client)
        return client

    yield register
    for client in clients:
        if isinstance(client, RefChatOpenAI):
            client.root_client.close()
        elif isinstance(client, RefChatOllama):
            client._client.close()
        else:  # openai.OpenAI, ollama.Client
            client.close()


# -- OpenAI chat completions ---------------------------------------------------------------


@pytest.fixture
def pair(openai_server: FakeOpenAI, close_later: Callable[[Any], Any]) -> Iterator[tuple[ChatOpenAI, RefChatOpenAI]]:
    options: dict[str, Any] = {"temperature": 0.2, "max_tokens": 50, "stop": ["\n"], "seed": 7}
    reference = close_later(
        RefChatOpenAI(
            model="gpt-test", api_key="sk-test", base_url=openai_server.url, max_retries=0, stream_usage=True, **options
        )
    )
    with ChatOpenAI("gpt-test", api_key="sk-test", base_url=openai_server.url, max_retries=0, **options) as model:
        yield model, reference


def run_both(server: Any, tether_call: Any, reference_call: Any, *says: Say) -> tuple[Any, Any, Any, Any]:
    """Each call against the same script; returns (tether result, reference result, bodies)."""
    server.then(*copy.deepcopy(says))
    ours = tether_call()
    our_body = server.last.body
    server.then(*copy.deepcopy(says))
    theirs = reference_call()
    return ours, theirs, our_body, server.last.body


def test_openai_plain_text_and_options(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    say = Say("Hello there", input_tokens=12, output_tokens=3)
    ours, theirs, our_body, their_body = run_both(
        openai_server, lambda: model.invoke("hi"), lambda: reference.invoke("hi"), say
    )
    assert our_body == their_body
    assert our_body["max_completion_tokens"] == 50  # not the deprecated max_tokens
    assert ours.content == theirs.content == "Hello there"
    assert usage(ours) == usage(theirs) == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    for key in ("model_name", "finish_reason", "system_fingerprint"):
        assert ours.response_metadata[key] == theirs.response_metadata[key]
    assert ours.id == theirs.response_metadata["id"]


def test_openai_headers(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    model.invoke("hi")
    ours = openai_server.last.headers
    reference.invoke("hi")
    theirs = openai_server.last.headers
    for name in ("authorization", "content-type"):
        assert ours[name] == theirs[name]


def test_openai_per_call_options(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    extra = {"max_tokens": 9, "top_p": 0.5, "parallel_tool_calls": False, "stop": ["END"]}
    _, _, our_body, their_body = run_both(
        openai_server, lambda: model.invoke("hi", **extra), lambda: reference.invoke("hi", **extra)
    )
    assert our_body == their_body
    assert (our_body["max_completion_tokens"], "max_tokens" in our_body) == (9, False)


def test_openai_history_with_names_tool_calls_and_results(
    pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI
) -> None:
    model, reference = pair
    _, _, our_body, their_body = run_both(
        openai_server,
        lambda: model.invoke(history(tether_messages)),
        lambda: reference.invoke(history(lc_messages)),
    )
    assert our_body == their_body
    assistant = our_body["messages"][2]
    assert assistant["content"] is None  # OpenAI's form for "only tool calls"
    assert assistant["tool_calls"][1]["function"]["arguments"] == '{"city": "Bergen", "units": "metric"}'
    assert our_body["messages"][3] == {"role": "tool", "tool_call_id": "call_0abc", "content": "-3 and snowing"}
    assert our_body["messages"][1]["name"] == "ann"


def test_openai_multipart_content(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    _, _, our_body, their_body = run_both(
        openai_server,
        lambda: model.invoke(multipart(tether_messages)),
        lambda: reference.invoke(multipart(lc_messages)),
    )
    assert our_body == their_body


@pytest.mark.parametrize("tool_choice", [None, "auto", "none", "any", "required", True, "get_weather"])
def test_openai_tools_from_the_same_function(
    pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI, tool_choice: Any
) -> None:
    model, reference = pair
    _, _, our_body, their_body = run_both(
        openai_server,
        lambda: model.bind_tools([get_weather], tool_choice=tool_choice).invoke("weather?"),
        lambda: reference.bind_tools([get_weather], tool_choice=tool_choice).invoke("weather?"),
    )
    assert our_body == their_body
    assert our_body["tools"][0]["function"]["parameters"]["required"] == ["city"]


@pytest.mark.parametrize(
    "tool_calls",
    [
        [("get_weather", {"city": "Oslo"})],
        [("get_weather", {"city": "Oslo", "units": "imperial"}), ("get_weather", {"city": "Bergen"})],
    ],
    ids=["one", "several"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_openai_tool_call_replies(
    pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI, tool_calls: Any, stream: bool
) -> None:
    model, reference = pair
    ours_model, ref_model = model.bind_tools([get_weather]), reference.bind_tools([get_weather])
    say = Say("Looking it up." if stream else "", tool_calls=tool_calls, input_tokens=20, output_tokens=9)
    if stream:
        ours, theirs, our_body, their_body = run_both(
            openai_server,
            lambda: _sum(list(ours_model.stream("weather?"))),
            lambda: _sum(list(ref_model.stream("weather?"))),
            say,
        )
    else:
        ours, theirs, our_body, their_body = run_both(
            openai_server, lambda: ours_model.invoke("weather?"), lambda: ref_model.invoke("weather?"), say
        )
    assert our_body == their_body
    assert ours.content == theirs.content
    assert calls(ours) == calls(theirs) == [(n, a, f"call_{i}abc") for i, (n, a) in enumerate(tool_calls)]
    assert usage(ours) == usage(theirs) == {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}
    assert ours.response_metadata["finish_reason"] == theirs.response_metadata["finish_reason"] == "tool_calls"
    assert ours.response_metadata["model_name"] == theirs.response_metadata["model_name"]


def _sum(chunks: list[Any]) -> Any:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


def test_openai_streamed_text_and_usage(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    say = Say("one two three", input_tokens=5, output_tokens=3)
    ours, theirs, our_body, their_body = run_both(
        openai_server, lambda: list(model.stream("count")), lambda: list(reference.stream("count")), say
    )
    assert our_body == their_body
    assert our_body["stream_options"] == {"include_usage": True}
    assert [c.content for c in ours if c.content] == [c.content for c in theirs if c.content]
    assert usage(_sum(ours)) == usage(_sum(theirs)) == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    assert _sum(ours).response_metadata["finish_reason"] == _sum(theirs).response_metadata["finish_reason"]


def test_openai_usage_details(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    details = {"prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}
    say = Say("hi", input_tokens=10, output_tokens=5, usage_details=details)
    ours, theirs, _, _ = run_both(openai_server, lambda: model.invoke("hi"), lambda: reference.invoke("hi"), say)
    assert usage(ours) == usage(theirs)
    assert usage(ours)["input_token_details"] == {"cache_read": 4}
    assert usage(ours)["output_token_details"] == {"reasoning": 2}


def test_openai_structured_output(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    say = Say('{"city": "Oslo", "celsius": -3}')
    ours, theirs, our_body, their_body = run_both(
        openai_server,
        lambda: model.with_structured_output(Weather).invoke("weather?"),
        lambda: reference.with_structured_output(Weather).invoke("weather?"),
        say,
    )
    assert our_body == their_body
    assert our_body["response_format"]["type"] == "json_schema"
    assert ours == theirs == Weather(city="Oslo", celsius=-3)


def test_openai_sdk_sends_the_same_body(openai_server: FakeOpenAI, close_later: Callable[[Any], Any]) -> None:
    """The official SDK, given the wire form by hand, sends what Tether builds."""
    sdk = close_later(openai.OpenAI(api_key="sk-test", base_url=openai_server.url, max_retries=0))
    with ChatOpenAI("gpt-test", api_key="sk-test", base_url=openai_server.url, max_tokens=5, seed=1) as model:
        model.invoke(history(tether_messages))
        ours = openai_server.last.body
    sdk.chat.completions.create(
        model="gpt-test", messages=ours["messages"], max_completion_tokens=5, seed=1, stream=False
    )
    assert openai_server.last.body == ours


# errors: the SDK's own exception where Tether raises its own ---------------------------


@pytest.mark.parametrize(
    ("script", "model_name", "key", "ours", "theirs"),
    [
        ((), "gpt-test", "sk-wrong", AuthenticationError, openai.AuthenticationError),
        ((), "gpt-nope", "sk-test", ModelNotFoundError, openai.NotFoundError),
        ((Fail(429, headers={"Retry-After": "0"}),) * 2, "gpt-test", "sk-test", RateLimitError, openai.RateLimitError),
        ((Fail(500),) * 2, "gpt-test", "sk-test", ServerError, openai.InternalServerError),
        ((Fail(503),) * 2, "gpt-test", "sk-test", ServerError, openai.InternalServerError),
    ],
    ids=["401", "404-unknown-model", "429", "500", "503"],
)
def test_openai_errors(
    openai_server: FakeOpenAI,
    script: tuple[Fail, ...],
    model_name: str,
    key: str,
    ours: type,
    theirs: type,
    close_later: Callable[[Any], Any],
) -> None:
    sdk = close_later(openai.OpenAI(api_key=key, base_url=openai_server.url, max_retries=1))
    with ChatOpenAI(model_name, api_key=key, base_url=openai_server.url, max_retries=1) as model:
        openai_server.then(*copy.deepcopy(script))
        with pytest.raises(ours) as caught:
            model.invoke("hi")
        our_requests = len(openai_server.requests)
        openai_server.then(*copy.deepcopy(script))
        with pytest.raises(theirs) as reference:
            sdk.chat.completions.create(model=model_name, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == reference.value.status_code
    assert len(openai_server.requests) - our_requests == our_requests  # the same number of attempts


@pytest.mark.parametrize("status", [429, 500])
def test_openai_retry_then_success(openai_server: FakeOpenAI, status: int, close_later: Callable[[Any], Any]) -> None:
    sdk = close_later(openai.OpenAI(api_key="sk-test", base_url=openai_server.url, max_retries=1))
    with ChatOpenAI("gpt-test", api_key="sk-test", base_url=openai_server.url, max_retries=1) as model:
        openai_server.then(Fail(status, headers={"Retry-After": "0"}), Say("finally"))
        assert model.invoke("hi").content == "finally"
        openai_server.then(Fail(status, headers={"Retry-After": "0"}), Say("finally"))
        reply = sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "finally"
    assert len(openai_server.requests) == 4


def test_openai_malformed_json(pair: tuple[ChatOpenAI, RefChatOpenAI], openai_server: FakeOpenAI) -> None:
    model, reference = pair
    openai_server.then(Raw(b"<html>gateway</html>"))
    with pytest.raises(MalformedResponseError, match="not JSON"):
        model.invoke("hi")
    openai_server.then(Raw(b"<html>gateway</html>"))
    with pytest.raises(json.JSONDecodeError):
        reference.invoke("hi")


# -- Ollama native chat --------------------------------------------------------------------


@pytest.fixture
def ollama_pair(
    ollama_server: FakeOllama, close_later: Callable[[Any], Any]
) -> Iterator[tuple[ChatOllama, RefChatOllama]]:
    options: dict[str, Any] = {"temperature": 0.2, "num_predict": 50, "stop": ["\n"], "seed": 7, "num_ctx": 4096}
    reference = close_later(RefChatOllama(model="llama-test", base_url=ollama_server.url, keep_alive="5m", **options))
    with ChatOllama("llama-test", base_url=ollama_server.url, max_retries=1, keep_alive="5m", **options) as model:
        yield model, reference


def ollama_body(body: dict[str, Any]) -> dict[str, Any]:
    """A body without what legitimately differs (see the module docstring)."""
    body = copy.deepcopy(body)
    body.pop("stream", None)
    if body.get("options") == {}:
        del body["options"]
    if body.get("tools") == []:
        del body["tools"]
    for tool in body.get("tools", []):
        for prop in tool["function"]["parameters"].get("properties", {}).values():
            prop.pop("default", None)
    for message in body["messages"]:
        if message["role"] == "assistant" and message.get("tool_calls") and message.get("content") == "":
            del message["content"]
        if message["role"] == "tool":
            message.pop("tool_call_id", None)
            message.pop("tool_name", None)
        if isinstance(message.get("content"), str):
            message["content"] = message["content"].strip()
    return body


def test_ollama_plain_text_and_options(
    ollama_pair: tuple[ChatOllama, RefChatOllama], ollama_server: FakeOllama
) -> None:
    model, reference = ollama_pair
    say = Say("Hei!", input_tokens=20, output_tokens=2)
    ours, theirs, our_body, their_body = run_both(
        ollama_server,
        lambda: model.invoke([tether_messages.SystemMessage("be brief"), tether_messages.HumanMessage("hi")]),
        lambda: reference.invoke([lc_messages.SystemMessage("be brief"), lc_messages.HumanMessage("hi")]),
        say,
    )
    assert ollama_body(our_body) == ollama_body(their_body)
    assert our_body["options"] == {"temperature": 0.2, "num_predict": 50, "stop": ["\n"], "seed": 7, "num_ctx": 4096}
    assert our_body["keep_alive"] == "5m"
    assert ours.content == theirs.content == "Hei!"
    assert usage(ours) == usage(theirs) == {"input_tokens": 20, "output_tokens": 2, "total_tokens": 22}
    assert ours.response_metadata["model_name"] == theirs.response_metadata["model_name"]
    assert ours.response_metadata["finish_reason"] == theirs.response_metadata["done_reason"]


def test_ollama_think_is_top_level(ollama_server: FakeOllama, close_later: Callable[[Any], Any]) -> None:
    reference = close_later(RefChatOllama(model="llama-test", base_url=ollama_server.url, reasoning=False))
    with ChatOllama("llama-test", base_url=ollama_server.url, think=False) as model:
        _, _, our_body, their_body = run_both(ollama_server, lambda: model.invoke("hi"), lambda: reference.invoke("hi"))
    assert our_body["think"] is their_body["think"] is False
    assert "options" not in our_body


def test_ollama_history_with_tool_calls_and_results(
    ollama_pair: tuple[ChatOllama, RefChatOllama], ollama_server: FakeOllama, close_later: Callable[[Any], Any]
) -> None:
    model, reference = ollama_pair
    _, _, our_body, their_body = run_both(
        ollama_server,
        lambda: model.invoke(history(tether_messages)),
        lambda: reference.invoke(history(lc_messages)),
    )
    assert ollama_body(our_body) == ollama_body(their_body)
    assert our_body["messages"][2]["tool_calls"][0] == {
        "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}
    }
    # the official client's field for which tool answered, found from the call it answers
    assert our_body["messages"][3]["tool_name"] == "get_weather"
    client = close_later(ollama.Client(host=ollama_server.url))
    tool_result = {"role": "tool", "content": "-3 and snowing", "tool_name": "get_weather"}
    client.chat(model="llama-test", messages=[tool_result])
    sent = {k: v for k, v in our_body["messages"][3].items() if k != "tool_call_id"}
    assert ollama_server.last.body["messages"] == [sent]


def test_ollama_images(ollama_pair: tuple[ChatOllama, RefChatOllama], ollama_server: FakeOllama) -> None:
    model, reference = ollama_pair
    _, _, our_body, their_body = run_both(
        ollama_server,
        lambda: model.invoke(multipart(tether_messages)),
        lambda: reference.invoke(multipart(lc_messages)),
    )
    assert ollama_body(our_body) == ollama_body(their_body)
    assert our_body["messages"][0]["images"] == [IMAGE]


def test_ollama_tools_from_the_same_function(ollama_server: FakeOllama, close_later: Callable[[Any], Any]) -> None:
    reference = close_later(RefChatOllama(model="llama-test", base_url=ollama_server.url))
    client = close_later(ollama.Client(host=ollama_server.url))
    with ChatOllama("llama-test", base_url=ollama_server.url) as model:
        _, _, our_body, their_body = run_both(
            ollama_server,
            lambda: model.bind_tools([get_weather]).invoke("weather?"),
            lambda: reference.bind_tools([get_weather]).invoke("weather?"),
        )
    assert ollama_body(our_body) == ollama_body(their_body)
    client.chat(model="llama-test", messages=[{"role": "user", "content": "weather?"}], tools=[our_body["tools"][0]])
    assert ollama_body(ollama_server.last.body)["tools"] == ollama_body(our_body)["tools"]


@pytest.mark.parametrize(
    "tool_calls",
    [
        [("get_weather", {"city": "Oslo"})],
        [("get_weather", {"city": "Oslo", "units": "imperial"}), ("get_weather", {"city": "Bergen"})],
    ],
    ids=["one", "several"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_ollama_tool_call_replies(tool_calls: Any, stream: bool, close_later: Callable[[Any], Any]) -> None:
    with FakeOllama(call_ids=True) as server, ChatOllama("llama-test", base_url=server.url) as model:
        reference = close_later(RefChatOllama(model="llama-test", base_url=server.url)).bind_tools([get_weather])
        bound = model.bind_tools([get_weather])
        say = Say("Let me check." if stream else "", tool_calls=tool_calls, input_tokens=11, output_tokens=9)
        ours, theirs, _, _ = run_both(
            server,
            (lambda: _sum(list(bound.stream("weather?")))) if stream else (lambda: bound.invoke("weather?")),
            (lambda: _sum(list(reference.stream("weather?")))) if stream else (lambda: reference.invoke("weather?")),
            say,
        )
    assert ours.content == theirs.content
    assert [c[:2] for c in calls(ours)] == [c[:2] for c in calls(theirs)] == tool_calls
    assert [c[2] for c in calls(ours)] == [f"id{i}" for i in range(len(tool_calls))]  # the server's own ids
    assert usage(ours) == usage(theirs) == {"input_tokens": 11, "output_tokens": 9, "total_tokens": 20}


def test_ollama_streamed_text(ollama_pair: tuple[ChatOllama, RefChatOllama], ollama_server: FakeOllama) -> None:
    model, reference = ollama_pair
    say = Say("one two three", input_tokens=5, output_tokens=3)
    ours, theirs, our_body, their_body = run_both(
        ollama_server, lambda: list(model.stream("count")), lambda: list(reference.stream("count")), say
    )
    assert ollama_body(our_body) == ollama_body(their_body)
    assert our_body["stream"] is their_body["stream"] is True
    assert "".join(c.content for c in ours) == "".join(c.content for c in theirs) == "one two three"
    assert usage(_sum(ours)) == usage(_sum(theirs)) == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}


def test_ollama_structured_output(ollama_pair: tuple[ChatOllama, RefChatOllama], ollama_server: FakeOllama) -> None:
    model, reference = ollama_pair
    say = Say('{"city": "Oslo", "celsius": -3}')
    ours, theirs, our_body, their_body = run_both(
        ollama_server,
        lambda: model.with_structured_output(Weather).invoke("weather?"),
        lambda: reference.with_structured_output(Weather, method="json_schema").invoke("weather?"),
        say,
    )
    assert ollama_body(our_body) == ollama_body(their_body)
    assert our_body["format"] == Weather.model_json_schema()
    assert ours == theirs == Weather(city="Oslo", celsius=-3)


@pytest.mark.parametrize(
    ("script", "model_name", "ours", "status"),
    [
        ((), "llama-nope", ModelNotFoundError, 404),
        (
            (Fail(500, {"error": "llama runner crashed"}, headers={"Retry-After": "0"}),) * 2,
            "llama-test",
            ServerError,
            500,
        ),
    ],
    ids=["404-unknown-model", "500"],
)
def test_ollama_errors(
    ollama_server: FakeOllama,
    script: tuple[Fail, ...],
    model_name: str,
    ours: type,
    status: int,
    close_later: Callable[[Any], Any],
) -> None:
    client = close_later(ollama.Client(host=ollama_server.url))
    with ChatOllama(model_name, base_url=ollama_server.url, max_retries=1) as model:
        ollama_server.then(*copy.deepcopy(script))
        with pytest.raises(ours) as caught:
            model.invoke("hi")
        ollama_server.then(*copy.deepcopy(script))
        with pytest.raises(ollama.ResponseError) as reference:
            client.chat(model=model_name, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == reference.value.status_code == status
    assert reference.value.error in str(caught.value)  # the server's own words reach the caller


def test_ollama_429_then_success(ollama_server: FakeOllama, close_later: Callable[[Any], Any]) -> None:
    client = close_later(ollama.Client(host=ollama_server.url))
    with ChatOllama("llama-test", base_url=ollama_server.url, max_retries=1) as model:
        ollama_server.then(Fail(429, {"error": "busy"}, headers={"Retry-After": "0"}), Say("done"))
        assert model.invoke("hi").content == "done"  # Tether retries
        ollama_server.then(Fail(429, {"error": "busy"}, headers={"Retry-After": "0"}), Say("done"))
        with pytest.raises(ollama.ResponseError) as reference:  # the official client does not
            client.chat(model="llama-test", messages=[{"role": "user", "content": "hi"}])
    assert reference.value.status_code == 429


def test_ollama_malformed_json(
    ollama_pair: tuple[ChatOllama, RefChatOllama], ollama_server: FakeOllama, close_later: Callable[[Any], Any]
) -> None:
    model, _ = ollama_pair
    client = close_later(ollama.Client(host=ollama_server.url))
    ollama_server.then(Raw(b"not json"))
    with pytest.raises(MalformedResponseError, match="not JSON"):
        model.invoke("hi")
    ollama_server.then(Raw(b"not json"))
    with pytest.raises(json.JSONDecodeError):
        client.chat(model="llama-test", messages=[{"role": "user", "content": "hi"}])
