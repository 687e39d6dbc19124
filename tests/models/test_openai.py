"""ChatOpenAI against a real loopback server speaking the chat-completions API."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel

from tether.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from tether.models import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatModelError,
    ChatOpenAI,
    MalformedResponseError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    init_chat_model,
)

from .conftest import Cut, Drop, Fail, FakeOpenAI, Raw, Say, Stall

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class Weather(BaseModel):
    """A weather report."""

    city: str
    celsius: float


# -- plain replies -----------------------------------------------------------------------


def test_plain_reply_and_request(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say("Hello there", input_tokens=12, output_tokens=3))
    reply = openai.invoke([SystemMessage("be brief"), HumanMessage("hi")], seed=7)

    assert reply.content == "Hello there"
    assert reply.id == "chatcmpl-fake1"
    assert reply.usage_metadata == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    assert reply.response_metadata["model"] == "gpt-test"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.tool_calls == []
    sent = openai_server.last
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "seed": 7,
        "stream": False,
    }


def test_constructor_settings_go_into_every_request(openai_server: FakeOpenAI) -> None:
    with ChatOpenAI(
        "gpt-test", api_key="sk-test", base_url=openai_server.url + "/", temperature=0.2, max_tokens=50, top_p=0.9
    ) as model:
        model.invoke("hi")
        model.invoke("hi", top_p=0.5)  # a per-call keyword wins
    first, second = (r.body for r in openai_server.requests)
    assert (first["temperature"], first["max_completion_tokens"], first["top_p"]) == (0.2, 50, 0.9)
    assert second["top_p"] == 0.5


def test_env_vars_configure_key_and_base_url(openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    with ChatOpenAI("gpt-test") as model:
        assert model.invoke("hi").content == "ok"
    assert model.base_url == openai_server.url


def test_closed_model_reconnects_and_copies_share_connections(openai: ChatOpenAI) -> None:
    bound = openai.bind_tools([WEATHER_TOOL])
    assert openai.invoke("one").content == "ok"
    openai.close()
    assert bound.invoke("two").content == "ok"  # a closed model opens a new connection on use
    assert repr(openai) == f"ChatOpenAI(model='gpt-test', base_url='{openai.base_url}')"


def test_conversation_with_tool_calls_is_sent_in_wire_format(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    history = [
        HumanMessage("weather in Oslo?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_1"}]),
        ToolMessage("-3 and snowing", tool_call_id="call_1"),
        HumanMessage([{"type": "text", "text": "and "}, "now?"]),
    ]
    openai.invoke(history)
    assert openai_server.last.body["messages"] == [
        {"role": "user", "content": "weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "-3 and snowing"},
        {"role": "user", "content": [{"type": "text", "text": "and "}, {"type": "text", "text": "now?"}]},
    ]


# -- tools and structured output ---------------------------------------------------------


def test_bind_tools_round_trip(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Bergen"})]))
    reply = openai.bind_tools([WEATHER_TOOL], tool_choice="get_weather").invoke("weather in Oslo and Bergen?")

    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Oslo"}, "call_0abc"),
        ("get_weather", {"city": "Bergen"}, "call_1abc"),
    ]
    assert all(c["type"] == "tool_call" for c in reply.tool_calls)
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    body = openai_server.last.body
    assert body["tools"] == [{"type": "function", "function": WEATHER_TOOL}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    openai.invoke("the original model")  # bind_tools made a copy; this one offers no tools
    assert "tools" not in openai_server.last.body


def test_tool_choice_spellings(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    for given, sent in [("auto", "auto"), ("any", "required"), ("none", "none")]:
        openai.bind_tools([WEATHER_TOOL], tool_choice=given).invoke("hi")
        assert openai_server.last.body["tool_choice"] == sent


def test_malformed_tool_arguments_name_the_tool(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say(tool_calls=[("get_weather", {})], raw_arguments='{"city": "Os'))
    with pytest.raises(MalformedResponseError, match=r"get_weather.*not valid JSON"):
        openai.bind_tools([WEATHER_TOOL]).invoke("hi")


def test_structured_output_via_strict_json_schema(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say('{"city": "Oslo", "celsius": -3}'))
    report = openai.with_structured_output(Weather).invoke("weather in Oslo?")

    assert report == Weather(city="Oslo", celsius=-3)
    body = openai_server.last.body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "Weather",
            "schema": {**Weather.model_json_schema(), "additionalProperties": False},
            "strict": True,
        },
    }
    assert "tools" not in body and "tool_choice" not in body  # the schema alone; some servers refuse both


def test_structured_output_still_reads_a_tool_call(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say(tool_calls=[("Weather", {"city": "Oslo", "celsius": -3})]))
    assert openai.with_structured_output(Weather).invoke("weather?") == Weather(city="Oslo", celsius=-3)


def test_structured_output_from_json_text(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say('{"city": "Oslo", "celsius": 4.5}'))
    assert openai.with_structured_output(Weather).invoke("weather?") == Weather(city="Oslo", celsius=4.5)


def test_response_format_alone_is_sent(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai.invoke("json please", response_format={"type": "json_object"})
    assert openai_server.last.body["response_format"] == {"type": "json_object"}


# -- streaming ---------------------------------------------------------------------------


def test_stream_text_then_usage(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say("one two three", input_tokens=5, output_tokens=3))
    chunks = list(openai.stream("count"))

    assert [c.content for c in chunks] == ["one ", "two ", "three", ""]
    assert {c.id for c in chunks} == {"chatcmpl-fake2"}
    last = chunks[-1]
    assert last.usage_metadata == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    assert last.response_metadata["finish_reason"] == "stop"
    assert openai_server.last.body["stream"] is True
    assert openai_server.last.body["stream_options"] == {"include_usage": True}


def test_stream_accumulates_tool_call_fragments(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    calls = [("get_weather", {"city": "Oslo", "units": "metric"}), ("get_weather", {"city": "Bergen"})]
    openai_server.then(Say("Looking up.", tool_calls=calls))
    chunks = list(openai.bind_tools([WEATHER_TOOL]).stream("weather?"))

    assert "".join(c.text for c in chunks) == "Looking up."
    assert all(not c.tool_calls for c in chunks[:-1])
    assert [(c["name"], c["args"], c["id"]) for c in chunks[-1].tool_calls] == [
        ("get_weather", {"city": "Oslo", "units": "metric"}, "call_0abc"),
        ("get_weather", {"city": "Bergen"}, "call_1abc"),
    ]
    assert chunks[-1].response_metadata["finish_reason"] == "tool_calls"


def test_stream_with_malformed_tool_arguments(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say(tool_calls=[("get_weather", {})], raw_arguments="{oops"))
    with pytest.raises(MalformedResponseError, match="'get_weather'"):
        list(openai.stream("hi"))


def test_stream_cut_short_is_an_error(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    event = b'data: {"id": "x", "choices": [{"index": 0, "delta": {"content": "hal"}, "finish_reason": null}]}\n\n'
    openai_server.then(Raw(event, content_type="text/event-stream"))
    with pytest.raises(MalformedResponseError, match=r"ended before 'data: \[DONE\]'"):
        list(openai.stream("hi"))


def test_connection_lost_mid_stream(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Cut(b'data: {"id": "x", "choices": [{"index": 0, "delta": {"content": "hal"}}]}\n\n'))
    chunks = []
    with pytest.raises(APIConnectionError, match=r"lost the connection.*in the middle of the stream"):
        for chunk in openai.stream("hi"):
            chunks.append(chunk)
    assert [c.text for c in chunks] == ["hal"]  # what arrived was passed on; nothing is replayed
    assert len(openai_server.requests) == 1


def test_stream_error_event(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Raw(b'data: {"error": {"message": "overloaded"}}\n\n', content_type="text/event-stream"))
    with pytest.raises(ServerError, match="overloaded"):
        list(openai.stream("hi"))


# -- async -------------------------------------------------------------------------------


async def test_ainvoke(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say(tool_calls=[("get_weather", {"city": "Oslo"})]))
    reply = await openai.bind_tools([WEATHER_TOOL]).ainvoke("weather?")
    assert reply.tool_calls[0]["args"] == {"city": "Oslo"}
    assert reply.usage_metadata is not None


async def test_astream(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Say("a b", tool_calls=[("get_weather", {"city": "Oslo"})]))
    chunks = [c async for c in openai.astream("hi")]
    assert [c.content for c in chunks] == ["a ", "b", ""]
    assert chunks[-1].tool_calls[0]["name"] == "get_weather"
    assert chunks[-1].usage_metadata == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}


async def test_async_structured_output_and_retry(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(
        Fail(503, headers={"Retry-After": "0"}), Say(tool_calls=[("Weather", {"city": "A", "celsius": 1})])
    )
    assert await openai.with_structured_output(Weather).ainvoke("hi") == Weather(city="A", celsius=1)
    assert len(openai_server.requests) == 2


# -- retries, timeouts and errors --------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_then_succeeds(openai: ChatOpenAI, openai_server: FakeOpenAI, status: int) -> None:
    fail = Fail(status, headers={"Retry-After": "0"})
    openai_server.then(fail, fail, Say("finally"))
    assert openai.invoke("hi").content == "finally"
    assert len(openai_server.requests) == 3


def test_streams_are_retried_before_the_first_byte(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Fail(502, headers={"Retry-After": "0"}), Say("streamed"))
    assert "".join(c.text for c in openai.stream("hi")) == "streamed"


def test_gives_up_after_max_retries(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(*[Fail(503, headers={"Retry-After": "0"})] * 5)
    with pytest.raises(ServerError, match="gave up after 3 attempts") as caught:
        openai.invoke("hi")
    assert caught.value.attempts == 3
    assert caught.value.status_code == 503
    assert len(openai_server.requests) == 3  # max_retries=2: one try and two retries


def test_rate_limit_gives_up_with_rate_limit_error(openai_server: FakeOpenAI) -> None:
    openai_server.then(*[Fail(429, headers={"Retry-After": "0"})] * 2)
    with (
        ChatOpenAI("gpt-test", api_key="sk-test", base_url=openai_server.url, max_retries=1) as model,
        pytest.raises(RateLimitError, match="gave up after 2 attempts"),
    ):
        model.invoke("hi")


def test_backoff_without_retry_after(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Fail(500), Say("ok"))
    started = time.monotonic()
    assert openai.invoke("hi").content == "ok"
    assert 0.3 <= time.monotonic() - started < 2  # 0.5 s ± 25% jitter


def test_exhausted_quota_is_not_retried(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    quota = {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}
    openai_server.then(Fail(429, quota, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitError, match="exceeded your current quota"):
        openai.invoke("hi")
    assert len(openai_server.requests) == 1


def test_dropped_connection_is_retried(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Drop(), Say("back"))
    assert openai.invoke("hi").content == "back"
    assert len(openai_server.requests) == 2


def test_timeout_is_a_clear_error(openai_server: FakeOpenAI) -> None:
    openai_server.then(Stall(5))
    with ChatOpenAI("gpt-test", api_key="sk-test", base_url=openai_server.url, timeout=0.2, max_retries=0) as model:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match=r"did not answer within 0\.2s.*timeout=") as caught:
            model.invoke("hi")
    assert time.monotonic() - started < 2
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, ChatModelError)


def test_unreachable_server(unused_port: int) -> None:
    with (
        ChatOpenAI("gpt-test", base_url=f"http://127.0.0.1:{unused_port}/v1", max_retries=0) as model,
        pytest.raises(APIConnectionError, match="is the server running") as caught,
    ):
        model.invoke("hi")
    assert isinstance(caught.value, ConnectionError)
    assert caught.value.__cause__ is not None  # the httpx error, kept for debugging


def test_bad_key_is_an_authentication_error(openai_server: FakeOpenAI) -> None:
    with (
        ChatOpenAI("gpt-test", api_key="sk-wrong", base_url=openai_server.url) as model,
        pytest.raises(AuthenticationError, match="OPENAI_API_KEY") as caught,
    ):
        model.invoke("hi")
    assert caught.value.status_code == 401
    assert "Incorrect API key" in str(caught.value)
    assert len(openai_server.requests) == 1  # never retried


def test_missing_key_for_openai_fails_before_any_request() -> None:
    with ChatOpenAI("gpt-4o-mini") as model, pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        model.invoke("hi")


def test_unknown_model(openai_server: FakeOpenAI) -> None:
    with (
        ChatOpenAI("gpt-nope", api_key="sk-test", base_url=openai_server.url) as model,
        pytest.raises(ModelNotFoundError, match="'gpt-nope'") as caught,
    ):
        model.invoke("hi")
    assert "does not exist" in str(caught.value)


def test_wrong_base_url_path_hints_at_v1(openai_server: FakeOpenAI) -> None:
    with (
        ChatOpenAI("gpt-test", api_key="sk-test", base_url=openai_server.root) as model,
        pytest.raises(ModelNotFoundError, match="/v1"),
    ):
        model.invoke("hi")


def test_bad_request_carries_the_server_message(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    openai_server.then(Fail(400, {"error": {"message": "temperature must be at most 2"}}))
    with pytest.raises(BadRequestError, match="temperature must be at most 2"):
        openai.invoke("hi")
    assert len(openai_server.requests) == 1


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>gateway</html>", "not JSON.*gateway"),
        (b'{"id": "x", "object": "chat.completion"}', "no 'choices'"),
        (b'{"choices": []}', "no 'choices'"),
        (b'{"choices": [{"index": 0}]}', "no 'message'"),
        (b'{"choices": [{"message": {"tool_calls": [{"function": {}}]}}]}', "without a function name"),
    ],
)
def test_malformed_replies(openai: ChatOpenAI, openai_server: FakeOpenAI, body: bytes, match: str) -> None:
    openai_server.then(Raw(body))
    with pytest.raises(MalformedResponseError, match=match):
        openai.invoke("hi")


# -- init_chat_model ---------------------------------------------------------------------


def test_init_chat_model(openai_server: FakeOpenAI) -> None:
    model = init_chat_model("openai:gpt-test", base_url=openai_server.url, api_key="sk-test", max_retries=0)
    assert isinstance(model, ChatOpenAI)
    try:
        assert model.invoke("hi").content == "ok"
        assert model.max_retries == 0
    finally:
        model.close()
