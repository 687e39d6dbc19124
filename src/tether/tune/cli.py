"""``tether tune``: turn the decisions people made in threads into training data (and train on it).

Imported by ``tether.cli`` on every start, so it stays light: typer and rich at the top, the
data code when a command runs, torch never here. ``tune_app`` is the typer app; the training
commands come from ``tether.tune.train_cli``, registered on it explicitly below.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tether._cli_errors import fail
from tether.tune.train_cli import register as register_training

__all__ = ["tune_app"]

tune_app = typer.Typer(
    help=(
        "Learn from people: export the edits, approvals and rejections stored in threads, "
        "train on them (SFT, reward, DPO with LoRA) and merge the adapter."
    ),
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _fail(message: str, code: int = 2) -> typer.Exit:
    return fail(message, code)


class OnErrorChoice(StrEnum):
    """What `tether tune export --on-error` does with a thread it cannot read."""

    skip = "skip"
    fail = "fail"


@tune_app.command("export")
def export_command(
    db: Annotated[str, typer.Argument(help="The checkpoint database: a SQLite file or a postgresql:// URL")],
    out: Annotated[Path, typer.Option("--out", help="Where the preference pairs go (JSON Lines)")] = Path(
        "prefs.jsonl"
    ),
    sft_out: Annotated[
        Path | None, typer.Option("--sft-out", help="Supervised examples (default: <out>.sft.jsonl beside --out)")
    ] = None,
    unpaired_out: Annotated[
        Path | None,
        typer.Option("--unpaired-out", help="Approve/reject verdicts (default: <out>.unpaired.jsonl beside --out)"),
    ] = None,
    thread: Annotated[
        list[str] | None, typer.Option("--thread", help="Only this thread (repeatable; default: every thread)")
    ] = None,
    breakpoint_: Annotated[
        list[str] | None,
        typer.Option(
            "--breakpoint",
            help="A node the graph paused before (interrupt_before); running it unchanged approves the reply "
            "before it (repeatable, e.g. --breakpoint tools)",
        ),
    ] = None,
    messages_key: Annotated[str, typer.Option("--messages-key", help="The state key holding the conversation")] = (
        "messages"
    ),
    system: Annotated[
        str | None, typer.Option("--system", help="A system prompt to put first in prompts that have none")
    ] = None,
    near_duplicates: Annotated[
        float,
        typer.Option(
            "--near-duplicates",
            help="MinHash Jaccard similarity at which two examples count as near duplicates (0 turns it off)",
        ),
    ] = 0.9,
    max_machine_share: Annotated[
        float, typer.Option("--max-machine-share", help="Most machine-written examples may be of each dataset (0-1)")
    ] = 0.5,
    drop_contradictions: Annotated[
        bool, typer.Option("--drop-contradictions", help="Remove pairs raters ordered both ways (default: flag them)")
    ] = False,
    no_sft_from_edits: Annotated[
        bool, typer.Option("--no-sft-from-edits", help="Do not use edited replies as supervised examples")
    ] = False,
    on_error: Annotated[
        OnErrorChoice,
        typer.Option(
            "--on-error",
            help="A thread with a row that cannot be read: skip leaves it out and lists it (thread, checkpoint, "
            "reason) in the summary; fail stops with its name and writes nothing",
        ),
    ] = OnErrorChoice.skip,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Export preference pairs, supervised examples and verdicts (TRL conversational JSON Lines)."""
    from tether.tune.export import export_preferences

    if not 0 <= near_duplicates <= 1:
        raise _fail(f"--near-duplicates must be between 0 and 1, got {near_duplicates}")
    if not 0 <= max_machine_share <= 1:
        raise _fail(f"--max-machine-share must be between 0 and 1, got {max_machine_share}")
    from tether.checkpoint import open_saver

    with open_saver(db, read_only=True) as saver:  # export only reads: never creates or migrates the database
        result = export_preferences(  # errors: one line on stderr, from tether._cli_errors
            saver,
            out,
            sft_out=sft_out,
            unpaired_out=unpaired_out,
            threads=thread or None,
            breakpoints=breakpoint_ or (),
            messages_key=messages_key,
            system_prompt=system,
            sft_from_edits=not no_sft_from_edits,
            near_duplicate_threshold=near_duplicates or None,
            max_machine_share=max_machine_share,
            drop_contradictions=drop_contradictions,
            on_error=on_error.value,
        )
    summary = result.to_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    decisions = ", ".join(f"{n} {k}" for k, n in sorted(summary["decisions"].items())) or "none"
    origins = ", ".join(f"{n} by {k}" for k, n in sorted(summary["origins"].items()))
    skipped = f" ([yellow]{len(summary['skipped'])} skipped[/], listed below)" if summary["skipped"] else ""
    console.print(
        f"[bold]{summary['threads']}[/] thread(s){skipped}: decisions {decisions}"
        + (f" ({origins})" if origins else "")
    )
    if summary["feedback_rows"]:
        console.print(
            f"feedback rows: {summary['feedback_rows']}"
            + (f", {summary['feedback_unmatched']} no longer match a reply" if summary["feedback_unmatched"] else "")
        )
    hygiene = summary["hygiene"]
    table = Table("dataset", "file", "found", "contradictions", "exact dupes", "near dupes", "machine cut", "written")
    for name, stats in hygiene["datasets"].items():
        table.add_row(
            name,
            summary["paths"][name],
            str(stats["total"]),
            str(stats["contradictions"]) + (" (dropped)" if stats["contradictions_dropped"] else ""),
            str(stats["exact_duplicates"]),
            str(stats["near_duplicates"]),
            f"{stats['machine_dropped']} of {stats['machine_before']}",
            f"[bold]{summary['written'][name]}[/]",
        )
    console.print(table)
    if hygiene["raters"]:
        raters = Table("rater", "machine", "pairs", "sft", "unpaired")
        for r in hygiene["raters"]:
            ex = r["examples"]
            raters.add_row(
                r["rater"], "yes" if r["machine"] else "", *(str(ex.get(k, 0)) for k in ("pairs", "sft", "unpaired"))
            )
        console.print(raters)
    if hygiene["agreement"]:
        agree = Table("raters", "shared items", "agreed", "agreement")
        for a in hygiene["agreement"]:
            rate = "-" if a["rate"] is None else f"{a['rate']:.0%}"
            agree.add_row(" & ".join(a["raters"]), str(a["shared"]), str(a["agreed"]), rate)
        console.print(agree)
    for c in hygiene["contradictions"][:10]:
        console.print(f"[yellow]contradiction[/] ({', '.join(c['raters'])}): {c['prompt']}")
    for skipped in summary["skipped"]:
        at = f" at checkpoint {skipped['checkpoint_id']!r}" if skipped["checkpoint_id"] else ""
        ns = f" (namespace {skipped['checkpoint_ns']!r})" if skipped["checkpoint_ns"] else ""
        console.print(
            f"[yellow]skipped[/] thread {escape(repr(skipped['thread_id']))}{escape(ns)}{escape(at)}: "
            f"{escape(skipped['reason'])}"
        )
    for note in summary["notes"]:
        console.print(f"[dim]note:[/] {note}")


# the training commands (sft, reward, dpo, merge), after export so `tether tune --help` lists them in this order
register_training(tune_app)
