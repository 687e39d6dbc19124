"""ChatOllama against a real loopback server speaking Ollama's /api/chat."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from tether.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from tether.models import (
    APITimeoutError,
    ChatOllama,
    MalformedResponseError,
    ModelNotFoundError,
    ServerError,
    init_chat_model,
)

from .conftest import Fail, FakeOllama, Raw, Say, Stall

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class Weather(BaseModel):
    city: str
    celsius: float


def test_plain_reply_and_request(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    ollama_server.then(Say("Hei!", input_tokens=20, output_tokens=2))
    reply = ollama.invoke([SystemMessage("be brief"), HumanMessage("hi")])

    assert reply.content == "Hei!"
    assert reply.id  # Ollama sends none; the client gives one
    assert reply.usage_metadata == {"input_tokens": 20, "output_tokens": 2, "total_tokens": 22}
    assert reply.response_metadata["model"] == "llama-test"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["total_duration"] == 5_000_000
    assert ollama_server.last.body == {
        "model": "llama-test",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stream": False,
    }


def test_model_options_and_top_level_fields(ollama_server: FakeOllama) -> None:
    with ChatOllama("llama-test", base_url=ollama_server.url, temperature=0, num_ctx=8192, keep_alive="5m") as model:
        model.invoke("hi", seed=42, think=False)
    body = ollama_server.last.body
    assert body["options"] == {"temperature": 0, "num_ctx": 8192, "seed": 42}
    assert (body["keep_alive"], body["think"]) == ("5m", False)


def test_ollama_host_env_without_scheme(ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.root.removeprefix("http://"))
    with ChatOllama("llama-test") as model:
        assert model.invoke("hi").content == "ok"
    assert model.base_url == ollama_server.root


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("gpu-box", "http://gpu-box:11434"),
        ("0.0.0.0:9999", "http://0.0.0.0:9999"),
        ("https://ollama.example.com/", "https://ollama.example.com"),  # a URL keeps its scheme's port
    ],
)
def test_host_forms(host: str | None, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if host is not None:
        monkeypatch.setenv("OLLAMA_HOST", host)
    with ChatOllama("llama-test") as model:
        assert model.base_url == url


def test_tool_calls_round_trip(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    ollama_server.then(Say(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Bergen"})]))
    reply = ollama.bind_tools([WEATHER_TOOL]).invoke("weather in Oslo and Bergen?")

    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Bergen"}),
    ]
    ids = [c["id"] for c in reply.tool_calls]
    assert all(ids) and len(set(ids)) == 2  # made up, since this server sends none
    assert ollama_server.last.body["tools"] == [{"type": "function", "function": WEATHER_TOOL}]

    # the answers go back with Ollama's tool_name, found from the call they answer
    ollama.invoke(
        [
            HumanMessage("weather?"),
            reply,
            ToolMessage("-3", tool_call_id=ids[0]),
            ToolMessage("+2", tool_call_id=ids[1]),
        ]
    )
    assert ollama_server.last.body["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
                {"function": {"name": "get_weather", "arguments": {"city": "Bergen"}}},
            ],
        },
        {"role": "tool", "content": "-3", "tool_call_id": ids[0], "tool_name": "get_weather"},
        {"role": "tool", "content": "+2", "tool_call_id": ids[1], "tool_name": "get_weather"},
    ]


def test_server_tool_call_ids_are_kept() -> None:
    with FakeOllama(call_ids=True) as server, ChatOllama("llama-test", base_url=server.url) as model:
        server.then(Say(tool_calls=[("get_weather", {"city": "Oslo"})]))
        assert model.invoke("hi").tool_calls[0]["id"] == "id0"


def test_tool_choice_none_leaves_tools_out(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    ollama.bind_tools([WEATHER_TOOL], tool_choice="none").invoke("hi")
    assert "tools" not in ollama_server.last.body


def test_structured_output_uses_format(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    ollama_server.then(Say('{"city": "Oslo", "celsius": -3}'))
    assert ollama.with_structured_output(Weather).invoke("weather?") == Weather(city="Oslo", celsius=-3)
    body = ollama_server.last.body
    assert body["format"] == Weather.model_json_schema()
    assert "tools" not in body  # Ollama cannot force a call: the schema constrains the text instead


def test_stream_text_tool_calls_and_usage(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    ollama_server.then(Say("Let me check.", tool_calls=[("get_weather", {"city": "Oslo"})], output_tokens=9))
    chunks = list(ollama.bind_tools([WEATHER_TOOL]).stream("weather?"))

    assert [c.content for c in chunks] == ["Let ", "me ", "check.", ""]
    assert len({c.id for c in chunks}) == 1
    assert all(not c.tool_calls for c in chunks[:-1])
    assert chunks[-1].tool_calls[0]["args"] == {"city": "Oslo"}
    assert chunks[-1].usage_metadata == {"input_tokens": 11, "output_tokens": 9, "total_tokens": 20}
    assert ollama_server.last.body["stream"] is True


def test_stream_error_line(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    body = b'{"model": "llama-test", "message": {"role": "assistant", "content": "par"}, "done": false}\n'
    ollama_server.then(Raw(body + b'{"error": "out of memory"}\n', content_type="application/x-ndjson"))
    with pytest.raises(ServerError, match="out of memory"):
        list(ollama.stream("hi"))


def test_stream_without_done_is_an_error(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    body = b'{"model": "llama-test", "message": {"role": "assistant", "content": "par"}, "done": false}\n'
    ollama_server.then(Raw(body, content_type="application/x-ndjson"))
    with pytest.raises(MalformedResponseError, match='"done": true'):
        list(ollama.stream("hi"))


async def test_ainvoke_and_astream(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    ollama_server.then(Fail(503, headers={"Retry-After": "0"}), Say("async hello"), Say("x y"))
    assert (await ollama.ainvoke("hi")).content == "async hello"
    chunks = [c async for c in ollama.astream("hi")]
    assert "".join(c.text for c in chunks) == "x y"
    assert chunks[-1].usage_metadata is not None


def test_unknown_model_suggests_pull(ollama_server: FakeOllama) -> None:
    with (
        ChatOllama("mistral-nope", base_url=ollama_server.url) as model,
        pytest.raises(ModelNotFoundError, match="ollama pull mistral-nope") as caught,
    ):
        model.invoke("hi")
    assert "model 'mistral-nope' not found" in str(caught.value)


def test_retries_and_gives_up(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    ollama_server.then(*[Fail(500, {"error": "llama runner crashed"}, headers={"Retry-After": "0"})] * 3)
    with pytest.raises(ServerError, match=r"gave up after 3 attempts.*llama runner crashed"):
        ollama.invoke("hi")
    assert len(ollama_server.requests) == 3


def test_timeout(ollama_server: FakeOllama) -> None:
    ollama_server.then(Stall(5))
    with (
        ChatOllama("llama-test", base_url=ollama_server.url, timeout=0.2, max_retries=0) as model,
        pytest.raises(APITimeoutError, match=r"0\.2s"),
    ):
        model.invoke("hi")


@pytest.mark.parametrize(
    ("body", "match"),
    [(b"not json", "not JSON"), (b'{"model": "llama-test", "done": true}', "no 'message'")],
)
def test_malformed_replies(ollama: ChatOllama, ollama_server: FakeOllama, body: bytes, match: str) -> None:
    ollama_server.then(Raw(body))
    with pytest.raises(MalformedResponseError, match=match):
        ollama.invoke("hi")


def test_images_go_in_the_images_field(ollama: ChatOllama, ollama_server: FakeOllama) -> None:
    content: list[str | dict[str, object]] = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    ollama.invoke([HumanMessage(content), AIMessage("a logo")])
    assert ollama_server.last.body["messages"][0] == {
        "role": "user",
        "content": "what is this?",
        "images": ["iVBORw0KGgo="],
    }


def test_init_chat_model(ollama_server: FakeOllama) -> None:
    model = init_chat_model("ollama:llama-test", base_url=ollama_server.url, num_ctx=4096)
    assert isinstance(model, ChatOllama)
    try:
        assert model.invoke("hi").content == "ok"
        assert ollama_server.last.body["options"] == {"num_ctx": 4096}
    finally:
        model.close()
