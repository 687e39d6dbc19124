"""``tether``: look at the threads in a checkpoint database from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tether.checkpoint import _serde as serde
from tether.checkpoint._sqlite import SqliteSaver
from tether.errors import TetherError
from tether.graph._offline import read_state
from tether.graph._state import decode_record

app = typer.Typer(
    help="Inspect Tether threads stored in a SQLite checkpoint database.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

DbArg = Annotated[Path, typer.Argument(help="Path to the SQLite checkpoint database, e.g. tether.sqlite")]
ThreadArg = Annotated[str, typer.Argument(help="The thread_id")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _open(db: Path) -> SqliteSaver:
    if not db.exists():
        console.print(f"[red]error:[/] no database at {db}")
        raise typer.Exit(2)
    try:
        return SqliteSaver.from_conn_string(db)
    except TetherError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(serde.encode(data), indent=2, ensure_ascii=False))


def _status(next_nodes: list[Any], pending_kinds: set[str]) -> str:
    if "interrupt" in pending_kinds:
        return "waiting"
    if "error" in pending_kinds:
        return "error"
    return "paused" if next_nodes else "done"


@app.command()
def threads(db: DbArg, as_json: JsonOpt = False) -> None:
    """List threads with their status, step count and what runs next."""
    with _open(db) as saver:
        rows = []
        for summary in saver.threads():
            decoded = decode_record(summary.head)
            next_nodes = [s if isinstance(s, str) else s["node"] for s in decoded.next]
            rows.append(
                {
                    "thread_id": summary.thread_id,
                    "status": _status(next_nodes, {p.kind for p in summary.pending}),
                    "step": summary.head.step,
                    "checkpoints": summary.checkpoints,
                    "updated_at": summary.head.created_at,
                    "next": next_nodes,
                }
            )
    if as_json:
        _print_json(rows)
        return
    table = Table("thread", "status", "step", "checkpoints", "updated", "next")
    for r in rows:
        table.add_row(
            r["thread_id"],
            r["status"],
            str(r["step"]),
            str(r["checkpoints"]),
            r["updated_at"],
            ", ".join(r["next"]) or "-",
        )
    console.print(table)


@app.command()
def history(
    db: DbArg,
    thread: ThreadArg,
    limit: Annotated[int | None, typer.Option(help="Show at most this many checkpoints")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a thread's checkpoints, newest first."""
    with _open(db) as saver:
        rows = []
        for record in saver.list(thread):
            decoded = decode_record(record)
            rows.append(
                {
                    "checkpoint_id": record.checkpoint_id,
                    "parent_id": record.parent_id,
                    "step": record.step,
                    "source": record.source,
                    "created_at": record.created_at,
                    "next": [s if isinstance(s, str) else s["node"] for s in decoded.next],
                    "writes": {
                        e["node"]: dict((k, v) for k, v in e.get("writes", ()) if not k.startswith("join:"))
                        for e in decoded.writes
                    },
                }
            )
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        console.print(f"[red]error:[/] thread {thread!r} has no checkpoints in {db}")
        raise typer.Exit(1)
    if as_json:
        _print_json(rows)
        return
    table = Table("step", "source", "checkpoint", "created", "wrote", "next")
    for r in rows:
        wrote = ", ".join(f"{node}: {', '.join(w) or '-'}" for node, w in r["writes"].items())
        table.add_row(
            str(r["step"]), r["source"], r["checkpoint_id"], r["created_at"], wrote or "-", ", ".join(r["next"]) or "-"
        )
    console.print(table)


@app.command()
def show(
    db: DbArg,
    thread: ThreadArg,
    checkpoint: Annotated[str | None, typer.Option(help="A checkpoint id (default: the newest)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a thread's state at a checkpoint."""
    with _open(db) as saver:
        try:
            state = read_state(saver, thread, checkpoint)
        except TetherError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from exc
    data = {
        "thread_id": thread,
        "checkpoint_id": state.record.checkpoint_id,
        "step": state.record.step,
        "values": state.values,
        "next": state.next,
        "interrupts": state.interrupts(),
    }
    if as_json:
        _print_json(data)
        return
    console.print(f"[bold]{thread}[/] @ step {state.record.step} ({state.record.checkpoint_id})")
    console.print_json(json.dumps(serde.encode(state.values), ensure_ascii=False))
    console.print(f"next: {', '.join(state.next) or '-'}")
    for item in state.interrupts():
        console.print(f"[yellow]waiting[/] on interrupt {item['id']}: {item['value']!r}")
    for key, name in state.unknown_reducers.items():
        console.print(f"[yellow]note:[/] key {key!r} uses custom reducer {name}; shown as its last write")


if __name__ == "__main__":  # pragma: no cover
    app()
