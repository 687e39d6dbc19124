"""A stored value that names a class this program has not imported is not damage: the row is
fine and the fix is in the program. Readers say so (``UnknownTypeError``, naming the thread,
checkpoint, column and the module to import) instead of calling the row corrupt."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from typing import TypedDict
    import pydantic
    from tether import START, StateGraph
    from tether.checkpoint import SqliteSaver

    sys.modules["draftmod"] = type(sys)("draftmod")  # a module only this writer has

    class Draft(pydantic.BaseModel):
        text: str

    Draft.__module__ = "draftmod"
    sys.modules["draftmod"].Draft = Draft

    class S(TypedDict, total=False):
        draft: Draft

    g = StateGraph(S)
    g.add_node("write", lambda s: {"draft": Draft(text="hello")})
    g.add_edge(START, "write")
    with SqliteSaver.from_conn_string(sys.argv[1]) as saver:
        g.compile(checkpointer=saver).invoke({}, {"configurable": {"thread_id": "t1"}})
    """
)

READER = textwrap.dedent(
    """
    import sys
    from tether.checkpoint import SqliteSaver
    from tether.errors import CorruptCheckpointError, UnknownTypeError
    from tether.graph._offline import read_state

    with SqliteSaver.from_conn_string(sys.argv[1]) as saver:
        try:
            read_state(saver, "t1")
        except UnknownTypeError as exc:
            assert not isinstance(exc, CorruptCheckpointError)
            print("UNKNOWN:", exc)
        else:
            print("READ")
    """
)


def _run(code: str, db: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_class_the_reader_lacks_is_named_not_called_corruption(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    _run(WRITER, db)
    out = _run(READER, db)
    assert out.startswith("UNKNOWN:"), out
    assert "'t1'" in out and "draftmod:Draft" in out and "import draftmod" in out
    assert "changed outside Tether" not in out


def test_the_cli_says_which_module_to_import(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    _run(WRITER, db)
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "show", str(db), "t1"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "import draftmod" in lines[0], done.stderr
