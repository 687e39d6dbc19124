"""``tether tune sft|reward|dpo|merge``: the training commands of the ``tune`` sub-app.

``tether.tune.cli`` adds them to its ``tune_app`` by calling :func:`register`; torch and the training stack
load only when a command runs, so ``tether --help`` stays quick.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from tether._cli_errors import fail
from tether.tune.train_errors import TrainingError

__all__ = ["register"]

console = Console(stderr=True)

DataOpt = Annotated[Path, typer.Option("--data", help="Exported JSONL (TRL conversational format)")]
ModelOpt = Annotated[
    Path, typer.Option("--model", help="A local model directory, or a config.json for a randomly initialised model")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Directory for the adapter, its record and metrics")]
RankOpt = Annotated[int, typer.Option("--rank", min=1, help="LoRA rank r")]
AlphaOpt = Annotated[int, typer.Option("--alpha", min=1, help="LoRA alpha (the update is scaled by alpha / r)")]
DropoutOpt = Annotated[float, typer.Option("--dropout", min=0.0, max=1.0, help="LoRA dropout")]
TargetsOpt = Annotated[
    str, typer.Option("--target-modules", help="'all-linear', or module names separated by commas (q_proj,v_proj)")
]
QloraOpt = Annotated[
    bool, typer.Option("--qlora", help="4-bit NF4 base weights with double quantization, bf16 compute (CUDA only)")
]
EpochsOpt = Annotated[float, typer.Option("--epochs", min=0.0, help="Passes over the training set")]
StepsOpt = Annotated[int | None, typer.Option("--max-steps", min=1, help="Optimizer steps (overrides --epochs)")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="Learning rate [default: 2e-4 SFT, 1e-4 reward, 5e-5 DPO]")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Examples (pairs) per device and step")]
AccumOpt = Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps")]
LengthOpt = Annotated[int, typer.Option("--max-length", min=8, help="Longest sequence in tokens")]
EvalFractionOpt = Annotated[float, typer.Option("--eval-fraction", help="Share of the data held out")]
EvalStepsOpt = Annotated[int | None, typer.Option("--eval-steps", min=1, help="Steps between evaluations")]
MaxKlOpt = Annotated[
    float | None, typer.Option("--max-kl", min=0.0, help="Stop once held-out KL to the reference passes this")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the split, the adapter and a random base")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda")]
CheckpointOpt = Annotated[
    bool, typer.Option("--activation-checkpointing", help="Recompute activations in the backward pass")
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON")]
BetaOpt = Annotated[float, typer.Option("--beta", min=0.0, help="DPO's β: how strongly to stay near the reference")]


def _fail(exc: Exception) -> typer.Exit:
    return fail(str(exc), 2)  # one line on stderr, as every tether command reports errors


def _run(kind: Literal["sft", "reward", "dpo"], options: dict[str, Any], as_json: bool) -> None:
    from tether.tune.train import TrainSettings, train  # torch loads here, not at `tether --help`

    if options["device"] not in ("auto", "cpu", "cuda"):
        raise _fail(ValueError(f"--device should be auto, cpu or cuda, got {options['device']!r}"))
    try:
        result = train(TrainSettings(kind=kind, **options))
    except TrainingError as exc:
        raise _fail(exc) from exc
    summary = {
        "out": str(result.out),
        "adapter_bytes": result.adapter_bytes,
        "train_examples": result.train_examples,
        "eval_examples": result.eval_examples,
        "skipped_lines": result.skipped_lines,
        "data_sha256": result.data_sha256,
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "stopped_early": result.stopped_early,
        "first": result.first and result.first.__dict__,
        "last": result.last and result.last.__dict__,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"adapter: {result.out} ({result.adapter_bytes / 1e6:.2f} MB), {result.steps} steps")
    if result.first and result.last:
        for name in ("eval_loss", "reward_margin", "preference_accuracy", "kl"):
            before, after = getattr(result.first, name), getattr(result.last, name)
            if before is not None and after is not None:
                typer.echo(f"  {name}: {before:.4f} -> {after:.4f}")
    if result.stopped_early:
        stop = result.stopped_early
        typer.echo(f"stopped early at step {stop['step']:.0f}: KL {stop['kl']:.3f} > --max-kl {stop['max_kl']:g}")
    typer.echo(f"metrics: {result.out / 'metrics.json'}, plot: {result.plot}")


def register(app: typer.Typer) -> None:
    """Add ``sft``, ``reward``, ``dpo`` and ``merge`` to ``app``."""

    @app.command()
    def sft(
        data: DataOpt,
        model: ModelOpt,
        out: OutOpt,
        rank: RankOpt = 16,
        alpha: AlphaOpt = 32,
        dropout: DropoutOpt = 0.05,
        target_modules: TargetsOpt = "all-linear",
        qlora: QloraOpt = False,
        epochs: EpochsOpt = 1.0,
        max_steps: StepsOpt = None,
        lr: LrOpt = None,
        batch_size: BatchOpt = 4,
        grad_accum: AccumOpt = 1,
        max_length: LengthOpt = 512,
        eval_fraction: EvalFractionOpt = 0.1,
        eval_steps: EvalStepsOpt = None,
        max_kl: MaxKlOpt = None,
        seed: SeedOpt = 0,
        device: DeviceOpt = "auto",
        activation_checkpointing: CheckpointOpt = False,
        progress: ProgressOpt = True,
        as_json: JsonOpt = False,
    ) -> None:
        """Supervised fine-tuning of a LoRA adapter on prompt/completion examples (and chosen answers)."""
        options = _options(locals())
        _run("sft", options, as_json)

    @app.command()
    def reward(
        data: DataOpt,
        model: ModelOpt,
        out: OutOpt,
        rank: RankOpt = 16,
        alpha: AlphaOpt = 32,
        dropout: DropoutOpt = 0.05,
        target_modules: TargetsOpt = "all-linear",
        qlora: QloraOpt = False,
        epochs: EpochsOpt = 1.0,
        max_steps: StepsOpt = None,
        lr: LrOpt = None,
        batch_size: BatchOpt = 4,
        grad_accum: AccumOpt = 1,
        max_length: LengthOpt = 512,
        eval_fraction: EvalFractionOpt = 0.1,
        eval_steps: EvalStepsOpt = None,
        seed: SeedOpt = 0,
        device: DeviceOpt = "auto",
        activation_checkpointing: CheckpointOpt = False,
        progress: ProgressOpt = True,
        as_json: JsonOpt = False,
    ) -> None:
        """Train a reward model (a scalar head and a LoRA adapter) on chosen/rejected pairs (Bradley–Terry)."""
        options = _options(locals())
        _run("reward", options, as_json)

    @app.command()
    def dpo(
        data: DataOpt,
        model: ModelOpt,
        out: OutOpt,
        rank: RankOpt = 16,
        alpha: AlphaOpt = 32,
        dropout: DropoutOpt = 0.05,
        target_modules: TargetsOpt = "all-linear",
        qlora: QloraOpt = False,
        beta: BetaOpt = 0.1,
        epochs: EpochsOpt = 1.0,
        max_steps: StepsOpt = None,
        lr: LrOpt = None,
        batch_size: BatchOpt = 4,
        grad_accum: AccumOpt = 1,
        max_length: LengthOpt = 512,
        eval_fraction: EvalFractionOpt = 0.1,
        eval_steps: EvalStepsOpt = None,
        max_kl: MaxKlOpt = None,
        seed: SeedOpt = 0,
        device: DeviceOpt = "auto",
        activation_checkpointing: CheckpointOpt = False,
        progress: ProgressOpt = True,
        as_json: JsonOpt = False,
    ) -> None:
        """Direct preference optimisation of a LoRA adapter on chosen/rejected pairs (the base is the reference)."""
        options = _options(locals())
        _run("dpo", options, as_json)

    @app.command()
    def merge(
        adapter: Annotated[Path, typer.Argument(help="A directory written by tether tune sft|reward|dpo")],
        out: Annotated[Path, typer.Option("--out", help="Directory for the merged model")],
    ) -> None:
        """Fold an adapter into its base weights: a plain model directory for serving (or for --model)."""
        from tether.tune.merge import merge_adapter

        try:
            merged = merge_adapter(adapter, out)
        except TrainingError as exc:
            raise _fail(exc) from exc
        typer.echo(f"merged model: {merged}")


_RENAMES = {
    "rank": "lora_rank",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "lr": "learning_rate",
    "grad_accum": "gradient_accumulation",
}


def _options(values: dict[str, Any]) -> dict[str, Any]:
    """The command's parameters as :class:`~tether.tune.train.TrainSettings` fields."""
    options = {_RENAMES.get(k, k): v for k, v in values.items() if k != "as_json"}
    for key in ("data", "model", "out"):
        options[key] = Path(options[key])
    return options
