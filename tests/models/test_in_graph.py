"""The HTTP clients inside a graph: tokens reach ``stream_mode="messages"`` as the server sends them."""

from __future__ import annotations

from typing import Any

import pytest

from tether import START, InMemorySaver, MessagesState, StateGraph
from tether.models import BaseChatModel, ChatOllama, ChatOpenAI

from .conftest import FakeOllama, FakeOpenAI, Say


def _app(model: BaseChatModel) -> Any:
    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node(agent)
    g.add_edge(START, "agent")
    return g.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize("client", ["openai", "ollama"])
def test_messages_stream_mode_gets_tokens_and_state_gets_the_whole_reply(
    client: str, openai: ChatOpenAI, openai_server: FakeOpenAI, ollama: ChatOllama, ollama_server: FakeOllama
) -> None:
    model, server = (openai, openai_server) if client == "openai" else (ollama, ollama_server)
    server.then(Say("durable agents resume", tool_calls=[("get_weather", {"city": "Oslo"})]))
    app = _app(model)
    config = {"configurable": {"thread_id": "t1"}}

    chunks = [m for m, _ in app.stream({"messages": [("user", "hi")]}, config, stream_mode="messages")]
    assert "".join(m.text for m in chunks) == "durable agents resume"
    assert len(chunks) >= 3 and len({m.id for m in chunks}) == 1
    assert server.last.body["stream"] is True

    reply = app.get_state(config).values["messages"][-1]
    assert reply.text == "durable agents resume"
    assert reply.tool_calls[0]["args"] == {"city": "Oslo"}
    assert reply.usage_metadata == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    assert reply.id == chunks[0].id


def test_plain_invoke_in_a_graph_does_not_stream(openai: ChatOpenAI, openai_server: FakeOpenAI) -> None:
    out = _app(openai).invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t2"}})
    assert out["messages"][-1].text == "ok"
    assert openai_server.last.body["stream"] is False
