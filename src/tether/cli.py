"""``tether``: look at the threads in a checkpoint database from the terminal.

Errors are one line, ``error: <message>``, on stderr (``tether._cli_errors``): exit code 2 when
the command line is wrong (``--value`` that is not JSON, no ``--graph``), 1 when the work could
not be done (a missing database, a damaged row, a thread that is not waiting).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tether._checkpoint_ids import matching_ids, short_ids
from tether._cli_errors import USAGE, ReportingGroup, fail
from tether._names import is_join
from tether._transcript import is_transcript, transcript
from tether.answers import read_answer
from tether.checkpoint import BaseCheckpointSaver, open_saver
from tether.checkpoint import _serde as serde
from tether.errors import ConfigError, InvalidResumeError
from tether.graph._loading import compile_for, import_graph
from tether.graph._offline import read_state
from tether.graph._state import decode_record
from tether.graph._thread_list import list_threads
from tether.graph._thread_status import thread_status
from tether.types import Command

app = typer.Typer(
    cls=ReportingGroup,
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


def _open(db: str, *, writes: bool = False) -> BaseCheckpointSaver:
    """The reading commands open the database read-only: never created, migrated or written, and a
    file that is not a Tether database is refused by name. Errors: one line, exit 1 (tether._cli_errors)."""
    return open_saver(db, read_only=not writes)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(serde.encode(data), indent=2, ensure_ascii=False))


def _meta_filters(pairs: list[str] | None) -> dict[str, Any]:
    """``--meta key=value`` options as a filter: the value as JSON when it parses (1, true, "x"), else text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise fail(f"--meta {pair!r}: write key=value, e.g. --meta user=ann", USAGE)
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


@app.command()
def threads(
    db: DbArg,
    waiting: Annotated[bool, typer.Option("--waiting", help="Only threads waiting for a person")] = False,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", help="Threads a page, newest activity first (1-1000)")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="The cursor a previous page printed: list the threads after it")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only threads in this status: waiting, error, paused, done")
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="Only threads whose head checkpoint's metadata has key=value (JSON or text)"),
    ] = None,
) -> None:
    """List threads with their status, step count and what runs next, a page at a time.

    When more threads are left, a line on stderr gives the --after cursor of the next page."""
    wanted = sorted({*(status or []), *(["waiting"] if waiting else [])}) or None
    with _open(db) as saver:
        # the one reader of open interrupts and status (get_state and `show` use it too);
        # a damaged row names itself
        page = list_threads(saver, limit=limit, after=after, status=wanted, metadata=_meta_filters(meta))
    rows: list[dict[str, Any]] = [
        {
            "thread_id": info.thread_id,
            "status": info.status,
            "step": info.step,
            "checkpoints": info.checkpoints,
            "updated_at": info.updated_at,
            "next": info.next,
            "interrupts": info.interrupts,
        }
        for info in page.items
    ]
    if page.next_cursor is not None:
        typer.echo(f"more threads: --after {page.next_cursor}", err=True)
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
    """The ``graph`` a run of this thread recorded in its metadata, newest first: shown, never imported."""
    for record in saver.list(thread):
        spec = decode_record(record).metadata.get("graph")
        if spec:
            return str(spec)
    return None


_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def _choose_graph(thread: str, given: str | None, recorded: str | None, other_graph: bool) -> str:
    """The graph to run: always the operator's ``--graph``; the stored name only hints and checks.

    Code named by the database is never imported: anyone who can write one row would choose
    what runs in the operator's shell.
    """
    shown = None if recorded is None else repr(recorded[:200])
    if given is None:
        if recorded is None:
            raise fail(f"which graph runs thread {thread!r}? pass --graph module:attribute", USAGE)
        hint = f"pass --graph {recorded} if you trust it" if _SPEC.fullmatch(recorded) else "it is no module:attribute"
        raise fail(
            f"thread {thread!r} was last run by graph {shown}; {hint} (tether resume never imports the graph a "
            "database names)",
            USAGE,
        )
    if recorded is not None and recorded != given and not other_graph:
        raise fail(
            f"thread {thread!r} was last run by graph {shown}, not {given!r}; pass --other-graph if running it "
            f"with {given!r} is intended",
            USAGE,
        )
    return given


def _load_graph(spec: str, saver: BaseCheckpointSaver) -> Any:
    """Import the operator's ``module:attr`` (a StateGraph, a compiled graph, or a function returning one)
    and compile it against ``saver``."""
    try:
        return compile_for(import_graph(spec), saver)
    except ConfigError as exc:
        raise fail(f"--graph: {exc}", USAGE) from exc


def _given_answer(value: str | None, answer: str | None) -> tuple[bool, Any]:
    """(whether an answer was given, the value to resume with), from --value (JSON) or --answer."""
    if value is not None and answer is not None:
        raise fail(
            "give --value (JSON) or --answer (approve | reject[:<why>] | edit:<text>), not both; nothing was written",
            USAGE,
        )
    if value is not None:
        try:
            return True, json.loads(value)
        except json.JSONDecodeError as exc:
            raise fail(
                f"--value is not valid JSON ({exc}); nothing was written. Text is a JSON string: "
                f"--value '\"approve\"'; an approval answer can also be given as --answer approve",
                USAGE,
            ) from exc
    if answer is not None:
        try:
            return True, read_answer(answer).as_resume()
        except InvalidResumeError as exc:
            raise fail(f"--answer: {exc}; nothing was written", USAGE) from exc
    return False, None


def _typed(text: str) -> Any:
    """What a person typed at the prompt: JSON, or one of the approval forms (InvalidResumeError if neither)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return read_answer(text).as_resume()
    except InvalidResumeError as exc:
        raise InvalidResumeError(f'{exc}; any other answer is JSON (text in quotes: "like this")') from exc


def _ask(thread: str, question: Any) -> Any:
    """Show the question and ask until the answer is JSON or a clear approval answer."""
    shown = json.dumps(serde.encode(question), ensure_ascii=False)
    console.print(f"[bold]{escape(thread)}[/] asks: {escape(shown)}")
    while True:
        text = typer.prompt("answer (approve | reject[:<why>] | edit:<new text>, or JSON)")
        try:
            return _typed(text)
        except InvalidResumeError as exc:
            typer.echo(str(exc), err=True)


@app.command()
def resume(
    db: DbArg,
    thread: ThreadArg,
    graph: Annotated[
        str | None,
        typer.Option(
            "--graph",
            envvar="TETHER_GRAPH",
            help="module:attribute of the graph that runs the thread (required; the graph a run recorded in the "
            "database is only shown, never imported)",
        ),
    ] = None,
    other_graph: Annotated[
        bool,
        typer.Option("--other-graph", help="Run the thread with --graph although it was last run by another graph"),
    ] = False,
    value: Annotated[
        str | None,
        typer.Option(
            "--value", help="The answer as JSON (text in quotes: --value '\"approve\"'); invalid JSON is refused"
        ),
    ] = None,
    answer: Annotated[
        str | None,
        typer.Option(
            "--answer",
            help="An approval answer: approve (a, yes, y) | reject[:<why>] (r, no, n) | edit:<text> (e); "
            "anything else is refused",
        ),
    ] = None,
    interrupt_id: Annotated[str | None, typer.Option("--id", help="Which interrupt, when several wait")] = None,
) -> None:
    """Answer a thread that waits on interrupt() and run it on with --graph; without --value/--answer, ask here."""
    have_answer, given = _given_answer(value, answer)  # refused before the database is touched
    with _open(db, writes=True) as saver:
        loaded = saver.get(thread)
        if loaded is None:
            raise fail(f"thread {thread!r} has no checkpoints in {db}")
        asks = thread_status(decode_record(loaded.record), loaded.pending).open_interrupts()
        if not asks:
            raise fail(f"thread {thread!r} is not waiting for a person")
        if interrupt_id is not None and interrupt_id not in {a["id"] for a in asks}:
            raise fail(f"thread {thread!r} has no pending interrupt {interrupt_id!r}")
        if interrupt_id is None and len(asks) > 1:
            ids = ", ".join(a["id"] for a in asks)
            raise fail(f"thread {thread!r} waits on {len(asks)} interrupts; pick one with --id ({ids})")
        ask = next(a for a in asks if interrupt_id in (None, a["id"]))
        spec = _choose_graph(thread, graph, _recorded_graph(saver, thread), other_graph)
        app_ = _load_graph(spec, saver)
        if not have_answer:
            given = _ask(thread, ask["value"])
        config = {"configurable": {"thread_id": thread}, "metadata": {"graph": spec}}
        app_.invoke(Command(resume={ask["id"]: given}), config)
        state = app_.get_state(config)
    if state.interrupts:
        for pending in state.interrupts:
            console.print(f"[yellow]waiting again[/] on {pending.id}: {escape(repr(pending.value))}")
    else:
        console.print(
            f"[green]resumed[/] {escape(thread)}: now at step {state.metadata['step']}, "
            f"next: {', '.join(state.next) or '-'}"
        )


@app.command()
def history(
    db: DbArg,
    thread: ThreadArg,
    limit: Annotated[int | None, typer.Option(help="Show at most this many checkpoints")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a thread's checkpoints, newest first; each id by its end, which show --checkpoint takes."""
    with _open(db) as saver:
        rows: list[dict[str, Any]] = []
        ids: list[str] = []  # every id of the thread, so a shown tail is unique in the thread, not only on the page
        for record in saver.list(thread):
            ids.append(record.checkpoint_id)
            if limit is not None and len(rows) >= limit:
                continue
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
                        e["node"]: dict((k, v) for k, v in e.get("writes", ()) if not is_join(k))
                        for e in decoded.writes
                    },
                }
            )
    if not rows:
        raise fail(f"thread {thread!r} has no checkpoints in {db}")
    if as_json:
        _print_json(rows)
        return
    shown = short_ids(ids)
    table = Table("step", "source", caption="checkpoint: the end of its id, which show --checkpoint takes")
    # the id column is never cut: a cut id is one that cannot be typed back
    table.add_column("checkpoint", no_wrap=True, min_width=max(len(shown[r["checkpoint_id"]]) for r in rows))
    for column in ("created", "wrote", "next"):
        table.add_column(column)
    for r in rows:
        wrote = ", ".join(f"{node}: {', '.join(w) or '-'}" for node, w in r["writes"].items())
        created = r["created_at"][:19].replace("T", " ")  # to the second: the id orders them exactly
        table.add_row(
            str(r["step"]), r["source"], shown[r["checkpoint_id"]], created, wrote or "-", ", ".join(r["next"]) or "-"
        )
    console.print(table)


def _print_values(values: dict[str, Any]) -> None:
    """A list of messages as a transcript (role, text, tool calls, tool results folded); the rest as JSON."""
    rest = {k: v for k, v in values.items() if not is_transcript(v)}
    if rest or not values:
        console.print_json(json.dumps(serde.encode(rest), ensure_ascii=False))
    for key, value in values.items():
        if is_transcript(value):
            console.print(f"[bold]{escape(key)}[/] ({len(value)} messages):")
            for block in transcript(value):
                console.print(block)


def _checkpoint_named(saver: BaseCheckpointSaver, thread: str, given: str | None) -> str | None:
    """The full id of the checkpoint ``given`` names: the id, its end as ``history`` shows it, or a prefix."""
    if given is None:
        return None
    ids = [record.checkpoint_id for record in saver.list(thread)]
    found = matching_ids(ids, given)
    if not found:
        raise fail(f"thread {thread!r} has no checkpoint {given!r} (give an id, a prefix, or its end from history)")
    if len(found) > 1:
        listed = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
        raise fail(f"checkpoint {given!r} of thread {thread!r} is ambiguous: it matches {listed}; give more of it")
    return found[0]


@app.command()
def show(
    db: DbArg,
    thread: ThreadArg,
    checkpoint: Annotated[
        str | None,
        typer.Option(help="A checkpoint: its id, its end as history shows it, or a unique prefix (default: newest)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a thread's state at a checkpoint."""
    with _open(db) as saver:
        state = read_state(saver, thread, _checkpoint_named(saver, thread, checkpoint))
    data = {
        "thread_id": thread,
        "checkpoint_id": state.record.checkpoint_id,
        "step": state.record.step,
        "values": state.values,
        "status": state.status(),
        "next": state.next,
        "interrupts": state.interrupts(),
    }
    if as_json:
        _print_json(data)
        return
    console.print(f"[bold]{thread}[/] @ step {state.record.step} ({state.record.checkpoint_id})")
    _print_values(state.values)
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
