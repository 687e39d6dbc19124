"""``tether show`` prints a list of messages as a transcript; ``--json`` keeps the stored values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, TypedDict

from typer.testing import CliRunner

from tether import START, SqliteSaver, StateGraph
from tether._transcript import FOLD_AT
from tether.cli import app
from tether.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage, add_messages

runner = CliRunner()

LONG_RESULT = "line one of the forecast\n" + "\n".join(f"detail {i}" for i in range(30))


class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int


def answer(state: Chat) -> dict[str, Any]:
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    return {
        "messages": [
            AIMessage("", tool_calls=[call]),
            ToolMessage(LONG_RESULT, tool_call_id="call_1"),
            ToolMessage("x" * (FOLD_AT * 3), tool_call_id="call_2", status="error"),
            AIMessage("It is [bold]18°C[/bold] in Paris."),
        ],
        "turns": 1,
    }


def chat_db(path: Path) -> None:
    g = StateGraph(Chat)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    with SqliteSaver.from_conn_string(path) as saver:
        g.compile(checkpointer=saver).invoke(
            {"messages": [SystemMessage("Be brief."), HumanMessage("Weather in Paris?\nToday.")]},
            {"configurable": {"thread_id": "chat"}},
        )


def test_show_prints_messages_as_a_transcript(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite"
    chat_db(db)
    result = runner.invoke(app, ["show", str(db), "chat"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "system  Be brief." in lines
    assert "human   Weather in Paris?" in lines and "        Today." in lines
    assert 'ai      → get_weather(city="Paris")  [call_1]' in lines
    assert "tool    [call_1] line one of the forecast  (+30 more lines, --json shows all)" in lines
    assert "detail 29" not in result.output  # folded
    assert any(line.startswith("tool error [call_2]") for line in lines)
    unwrapped = result.output.replace("\n", "")
    assert "x" * FOLD_AT not in unwrapped and "x" * (FOLD_AT - 1) + "…  (--json shows all)" in unwrapped
    assert "ai      It is [bold]18°C[/bold] in Paris." in lines  # stored text is never read as markup
    assert '"turns": 1' in result.output  # the other keys stay JSON
    assert '"type"' not in result.output and "tool_call_id" not in result.output


def test_show_json_keeps_the_stored_messages(tmp_path: Path) -> None:
    db = tmp_path / "chat.sqlite"
    chat_db(db)
    result = runner.invoke(app, ["show", str(db), "chat", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "detail 29" in json.dumps(data["values"]["messages"])
    assert data["values"]["turns"] == 1
    assert len(data["values"]["messages"]) == 6
