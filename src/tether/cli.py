"""``tether``: look at the threads in a checkpoint database from the terminal."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tether.checkpoint import BaseCheckpointSaver, open_saver
from tether.checkpoint import _serde as serde
from tether.checkpoint._base import PendingWrite
from tether.errors import ConfigError, TetherError
from tether.graph._loading import compile_for, import_graph
from tether.graph._offline import read_state
from tether.graph._state import decode_record
from tether.types import Command

app = typer.Typer(
    help="Inspect Tether threads stored in a checkpoint database (SQLite or PostgreSQL).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

DbArg = Annotated[
    str, typer.Argument(help="The checkpoint database: a SQLite file (tether.sqlite) or a postgresql:// URL")
]
ThreadArg = Annotated[str, typer.Argument(help="The thread_id")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _open(db: str) -> BaseCheckpointSaver:
    try:
        return open_saver(db)
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


def _waiting_on(pending: list[PendingWrite]) -> list[dict[str, Any]]:
    """The interrupts a thread waits on: those of tasks that have not finished since."""
    finished = {p.task_id for p in pending if p.kind == "result"}
    out: list[dict[str, Any]] = []
    for p in pending:
        if p.kind == "interrupt" and p.task_id not in finished:
            out += serde.loads(p.value)
    return out


@app.command()
def threads(
    db: DbArg,
    waiting: Annotated[bool, typer.Option("--waiting", help="Only threads waiting for a person")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List threads with their status, step count and what runs next."""
    with _open(db) as saver:
        rows = []
        for summary in saver.threads():
            decoded = decode_record(summary.head)
            next_nodes = [s if isinstance(s, str) else s["node"] for s in decoded.next]
            asks = _waiting_on(summary.pending)
            kinds = {p.kind for p in summary.pending} - ({"interrupt"} if not asks else set())
            status = _status(next_nodes, kinds)
            if waiting and status != "waiting":
                continue
            rows.append(
                {
                    "thread_id": summary.thread_id,
                    "status": status,
                    "step": summary.head.step,
                    "checkpoints": summary.checkpoints,
                    "updated_at": summary.head.created_at,
                    "next": next_nodes,
                    "interrupts": asks,
                }
            )
    if as_json:
        _print_json(rows)
        return
    if waiting:
        table = Table("thread", "step", "waiting since", "interrupt id", "asks")
        for r in rows:
            for ask in r["interrupts"]:
                table.add_row(
                    r["thread_id"],
                    str(r["step"]),
                    r["updated_at"],
                    ask["id"],
                    _shorten(json.dumps(serde.encode(ask["value"]), ensure_ascii=False), 120),
                )
        console.print(table if rows else "no thread is waiting for a person")
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


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _recorded_graph(saver: BaseCheckpointSaver, thread: str) -> str | None:
    """The ``graph`` a run of this thread recorded in its metadata, newest first."""
    for record in saver.list(thread):
        spec = decode_record(record).metadata.get("graph")
        if spec:
            return str(spec)
    return None


def _load_graph(spec: str, saver: BaseCheckpointSaver) -> Any:
    """Import ``module:attr`` (a StateGraph, a compiled graph, or a function returning one)
    and compile it against ``saver``."""
    try:
        return compile_for(import_graph(spec), saver)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _parse_answer(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # plain words are a string answer


@app.command()
def resume(
    db: DbArg,
    thread: ThreadArg,
    value: Annotated[
        str | None, typer.Option("--value", help="The answer, as JSON (plain text is taken as a string)")
    ] = None,
    interrupt_id: Annotated[str | None, typer.Option("--id", help="Which interrupt, when several wait")] = None,
    graph: Annotated[
        str | None,
        typer.Option(
            "--graph",
            envvar="TETHER_GRAPH",
            help="module:attribute of the graph (default: the 'graph' the run recorded in its metadata)",
        ),
    ] = None,
) -> None:
    """Answer a thread that waits on interrupt() and run it on; without --value, ask here."""
    with _open(db) as saver:
        loaded = saver.get(thread)
        if loaded is None:
            console.print(f"[red]error:[/] thread {thread!r} has no checkpoints in {db}")
            raise typer.Exit(1)
        asks = _waiting_on(loaded.pending)
        if not asks:
            console.print(f"[red]error:[/] thread {thread!r} is not waiting for a person")
            raise typer.Exit(1)
        if interrupt_id is not None and interrupt_id not in {a["id"] for a in asks}:
            console.print(f"[red]error:[/] thread {thread!r} has no pending interrupt {interrupt_id!r}")
            raise typer.Exit(1)
        if interrupt_id is None and len(asks) > 1:
            ids = ", ".join(a["id"] for a in asks)
            console.print(
                f"[red]error:[/] thread {thread!r} waits on {len(asks)} interrupts; pick one with --id ({ids})"
            )
            raise typer.Exit(1)
        ask = next(a for a in asks if interrupt_id in (None, a["id"]))
        spec = graph or _recorded_graph(saver, thread)
        if not spec:
            console.print("[red]error:[/] which graph runs this thread? pass --graph module:attribute")
            raise typer.Exit(2)
        app_ = _load_graph(spec, saver)
        if value is None:
            console.print(f"[bold]{thread}[/] asks: {json.dumps(serde.encode(ask['value']), ensure_ascii=False)}")
            value = typer.prompt("answer (JSON, or plain text)")
        answer = _parse_answer(value)
        config = {"configurable": {"thread_id": thread}, "metadata": {"graph": spec}}
        try:
            app_.invoke(Command(resume={ask["id"]: answer}), config)
        except TetherError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from exc
        state = app_.get_state(config)
    if state.interrupts:
        for pending in state.interrupts:
            console.print(f"[yellow]waiting again[/] on {pending.id}: {pending.value!r}")
    else:
        console.print(
            f"[green]resumed[/] {thread}: now at step {state.metadata['step']}, next: {', '.join(state.next) or '-'}"
        )


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


from tether.plan._cli import app as plan_app  # noqa: E402  (the planner registers after the commands above)

app.add_typer(plan_app, name="plan")

from tether.tune.cli import tune_app  # noqa: E402  (data code and torch load only when a command runs)

app.add_typer(tune_app, name="tune")

from tether.workers.cli import worker as worker_command  # noqa: E402  (imports procrastinate only when run)

app.command("worker")(worker_command)

if __name__ == "__main__":  # pragma: no cover
    app()
