"""`tether tune export`: people's decisions as TRL conversational JSON Lines, traceable to their checkpoint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.tune.people import Store, chat_graph, config, store
from tether import Command
from tether.cli import app as cli
from tether.graph._offline import read_state
from tether.messages import AIMessage, RemoveMessage
from tether.tune import export_preferences, find_decisions, record_feedback
from tether.tune.export import build_datasets, default_paths, to_chat

__all__ = ["store"]

runner = CliRunner()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def people_at_work(store: Store) -> None:
    """Three threads: an edit, an approval through interrupt(), a rejection then an approved retry."""
    plain = chat_graph(with_review=False).compile(checkpointer=store.saver)
    plain.invoke({"messages": [("user", "Summarise: the meeting moved to Friday.")]}, config("edit"))
    reply = plain.get_state(config("edit")).values["messages"][-1]
    better = AIMessage(content="The meeting is now on Friday.", id=reply.id)
    plain.update_state(config("edit", rater="alice"), {"messages": [better]})

    reviewed = chat_graph().compile(checkpointer=store.saver)
    reviewed.invoke({"messages": [("user", "Greet the new hire.")]}, config("approve"))
    reviewed.invoke(Command(resume="approve"), config("approve", rater="bob"))

    # bob rejects the first draft (the review removes it); a second draft is approved
    reviewed.invoke({"messages": [("user", "Thank the team.")]}, config("retry"))
    reviewed.invoke(Command(resume={"action": "reject", "reason": "too stiff"}), config("retry", rater="bob"))
    reviewed.update_state(config("retry"), {"messages": [AIMessage(content="Thanks, everyone!")]}, as_node="chat")
    reviewed.invoke(None, config("retry"))  # to the review
    reviewed.invoke(Command(resume=True), config("retry", rater="bob"))


def test_export_writes_trl_conversational_records(store: Store, tmp_path: Path) -> None:
    plain = chat_graph(with_review=False).compile(checkpointer=store.saver)
    plain.invoke({"messages": [("user", "Summarise: the meeting moved to Friday.")]}, config("edit"))
    reply = plain.get_state(config("edit")).values["messages"][-1]
    after = plain.update_state(
        config("edit", rater="alice"), {"messages": [AIMessage(content="The meeting is now on Friday.", id=reply.id)]}
    )
    reviewed = chat_graph().compile(checkpointer=store.saver)
    reviewed.invoke({"messages": [("user", "Greet the new hire.")]}, config("approve"))
    reviewed.invoke(Command(resume="approve"), config("approve", rater="bob"))

    out = tmp_path / "prefs.jsonl"
    result = runner.invoke(cli, ["tune", "export", store.target, "--out", str(out), "--json", "--system", "Be brief."])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["decisions"] == {"edit": 1, "approval": 1}
    assert summary["written"] == {"pairs": 1, "sft": 2, "unpaired": 3}

    (pair,) = lines(out)
    assert pair["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarise: the meeting moved to Friday."},
    ]
    assert pair["chosen"] == [{"role": "assistant", "content": "The meeting is now on Friday."}]
    assert pair["rejected"] == [{"role": "assistant", "content": "Answer: Summarise: the meeting moved to Friday."}]
    meta = pair["meta"]
    assert meta["thread_id"] == "edit" and meta["rater"] == "alice" and meta["source"] == "edit"
    assert meta["checkpoint_id"] == after["configurable"]["checkpoint_id"]
    # the record leads back to the moment: the state at its checkpoint holds the chosen reply
    there = read_state(store.saver, meta["thread_id"], meta["checkpoint_id"])
    assert there.values["messages"][-1].text == pair["chosen"][0]["content"]

    sft = lines(out.with_name("prefs.sft.jsonl"))
    assert {(r["meta"]["source"], r["completion"][0]["content"]) for r in sft} == {
        ("edit", "The meeting is now on Friday."),
        ("approval", "Answer: Greet the new hire."),
    }
    unpaired = lines(out.with_name("prefs.unpaired.jsonl"))
    assert sorted(r["label"] for r in unpaired) == [False, True, True]


def test_output_loads_with_datasets_and_is_what_trl_expects(store: Store, tmp_path: Path) -> None:
    from datasets import Dataset, load_dataset
    from trl.data_utils import is_conversational

    people_at_work(store)
    record_feedback(store.target, config("edit"), score=1, rater="carol")
    out = tmp_path / "prefs.jsonl"
    result = export_preferences(store.saver, out)
    assert result.written["pairs"] >= 2

    pairs = lines(out)
    assert Dataset.from_list(pairs).column_names == ["prompt", "chosen", "rejected", "meta"]
    loaded = load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)
    assert all(is_conversational(row) for row in loaded)
    for name in ("sft", "unpaired"):
        path = result.paths[name]
        data = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
        expected = {"prompt", "completion"} | ({"label"} if name == "unpaired" else set())
        assert expected <= set(data.column_names) and all(is_conversational(row) for row in data)
    # the rejected first draft and the approved second one, for the same prompt, by the same rater
    (derived,) = [p for p in pairs if p["meta"]["source"] == "rejection+approval"]
    assert derived["prompt"] == [{"role": "user", "content": "Thank the team."}]
    assert derived["meta"]["reason"] == "too stiff" and derived["meta"]["rater"] == "bob"
    assert derived["meta"]["other_checkpoint_id"] != derived["meta"]["checkpoint_id"]


def test_scores_make_pairs_within_a_rater(store: Store, tmp_path: Path) -> None:
    app = chat_graph(with_review=False).compile(checkpointer=store.saver)
    app.invoke({"messages": [("user", "Name a colour.")]}, config("a"))
    first = app.get_state(config("a"))
    # a second reply to the same prompt, on a fork of the thread
    app.update_state(first.config, {"messages": [RemoveMessage(first.values["messages"][-1].id)]})
    app.update_state(config("a"), {"messages": [AIMessage(content="Blue.")]}, as_node="chat")
    record_feedback(app, first.config, score=2, rater="dan")
    record_feedback(app, config("a"), score=5, rater="dan")
    record_feedback(app, config("a"), score=1, rater="erin")  # one score of erin's: no pair

    datasets = build_datasets(find_decisions(store.saver))
    (pair,) = datasets["pairs"]
    assert pair["chosen"][0]["content"] == "Blue." and pair["rejected"][0]["content"] == "Answer: Name a colour."
    assert pair["meta"]["scores"] == [5.0, 2.0] and pair["meta"]["rater"] == "dan"


def test_tool_calls_are_kept_as_json_text() -> None:
    message = AIMessage(content="", tool_calls=[{"name": "calc", "args": {"x": 1}, "id": "c1"}])
    assert to_chat(message) == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"x": 1}'}}],
    }


def test_default_paths_sit_beside_out(tmp_path: Path) -> None:
    paths = default_paths(tmp_path / "data" / "prefs.jsonl")
    assert paths["sft"].name == "prefs.sft.jsonl" and paths["unpaired"].name == "prefs.unpaired.jsonl"


def test_cli_reports_in_a_table_and_fails_clearly(store: Store, tmp_path: Path) -> None:
    people_at_work(store)
    out = tmp_path / "p.jsonl"
    result = runner.invoke(cli, ["tune", "export", store.target, "--out", str(out), "--thread", "edit"])
    assert result.exit_code == 0, result.output
    assert "pairs" in result.output and "alice" in result.output
    assert len(lines(out)) == 1
    missing = runner.invoke(cli, ["tune", "export", str(tmp_path / "nope.sqlite"), "--out", str(out)])
    assert missing.exit_code == 1 and "no database" in missing.output
    bad = runner.invoke(cli, ["tune", "export", store.target, "--out", str(out), "--max-machine-share", "2"])
    assert bad.exit_code == 2 and "between 0 and 1" in bad.output
    assert runner.invoke(cli, ["tune", "export", "--help"]).exit_code == 0


def test_data_code_imports_without_torch_or_datasketch() -> None:
    code = (
        "import sys, tether.cli, tether.tune, tether.tune.export, tether.tune.decisions, tether.tune.feedback; "
        "from tether.tune import find_decisions, record_feedback; "
        "heavy = ('torch', 'transformers', 'trl', 'peft', 'datasets', 'datasketch'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_docs_data_section_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = Path(__file__).parents[2] / "docs" / "tune.md"
    data_part = doc.read_text().split("\n## Train")[0]  # the training half has examples of its own
    blocks = re.findall(r"```python\n(.*?)```", data_part, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("tune_doc")
    monkeypatch.setitem(sys.modules, "tune_doc", module)
    for block in blocks:
        exec(compile(block, str(doc), "exec"), module.__dict__)
    assert "{'pairs': 1, 'sft': 1, 'unpaired': 2}" in capsys.readouterr().out


def damaged_store(tmp_path: Path) -> tuple[Path, str]:
    """The three threads of people_at_work, and the checkpoint of 'approve' whose writes were overwritten."""
    import sqlite3

    from tether.checkpoint import SqliteSaver

    path = tmp_path / "threads.sqlite"
    with SqliteSaver.from_conn_string(path) as saver:
        people_at_work(Store(saver, str(path), "sqlite"))
    with sqlite3.connect(path) as conn:
        (checkpoint,) = conn.execute(
            "SELECT checkpoint_id FROM thread_checkpoints WHERE thread_id = 'approve' AND step = 1"
        ).fetchone()
        conn.execute("UPDATE checkpoints SET writes = 'garbage' WHERE checkpoint_id = ?", (checkpoint,))
    return path, checkpoint


def test_a_damaged_thread_is_skipped_and_named_while_the_others_export(tmp_path: Path) -> None:
    db, checkpoint = damaged_store(tmp_path)
    out = tmp_path / "p.jsonl"
    result = export_preferences(db, out)  # on_error="skip" is the default
    assert [s.thread_id for s in result.skipped] == ["approve"]
    (skipped,) = result.to_dict()["skipped"]
    assert skipped["checkpoint_id"] == checkpoint and "not valid JSON" in skipped["reason"]
    kept = {r["meta"]["thread_id"] for name in ("pairs", "sft", "unpaired") for r in lines(result.paths[name])}
    assert kept == {"edit", "retry"}  # the good threads are exported; nothing of the damaged one
    assert any("left out" in note for note in result.notes)

    shown = runner.invoke(cli, ["tune", "export", str(db), "--out", str(out)], terminal_width=300)
    assert shown.exit_code == 0, shown.output
    assert f"skipped thread 'approve' at checkpoint '{checkpoint}'" in shown.output
    assert "1 skipped" in shown.output
    as_json = runner.invoke(cli, ["tune", "export", str(db), "--out", str(out), "--json"])
    assert json.loads(as_json.stdout)["skipped"] == [skipped]


def test_on_error_fail_names_the_thread_and_checkpoint_and_writes_nothing(tmp_path: Path) -> None:
    from tether.tune.decisions import UnreadableThreadError

    db, checkpoint = damaged_store(tmp_path)
    out = tmp_path / "p.jsonl"
    with pytest.raises(UnreadableThreadError) as caught:
        export_preferences(db, out, on_error="fail")
    assert "'approve'" in str(caught.value) and checkpoint in str(caught.value)
    assert caught.value.skipped.checkpoint_id == checkpoint
    assert not out.exists()
    with pytest.raises(UnreadableThreadError):
        find_decisions_of(db)
    failed = subprocess.run(
        [sys.executable, "-m", "tether.cli", "tune", "export", str(db), "--out", str(out), "--on-error", "fail"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    (line,) = failed.stderr.strip().splitlines()
    assert line.startswith("error: cannot read thread 'approve'") and checkpoint in line
    assert not out.exists()


def find_decisions_of(db: Path) -> list[Any]:
    from tether.checkpoint import open_saver

    with open_saver(db) as saver:
        return find_decisions(saver)
