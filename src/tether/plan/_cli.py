"""``tether plan``: will a model fit, how fast will it run, what do quantization and LoRA save.

Imported by ``tether.cli`` on every start, so it stays light: pydantic, typer and rich only; matplotlib
comes in with ``--plot`` and torch/transformers with ``validate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tether._cli_errors import USAGE, fail
from tether.plan._arch import Architecture
from tether.plan._config import load_config
from tether.plan._devices import DEVICE_PRESETS, custom_device, device_preset
from tether.plan._errors import PlanError
from tether.plan._params import count_parameters
from tether.plan._plan import ModelSummary, SpeculativeRequest, TrainingRequest, make_plan
from tether.plan._precision import PRECISION_NAMES, activation_precision, parse_precision
from tether.plan._presets import MODEL_PRESETS, model_preset, preset_architecture
from tether.plan._render import plain_table, render_plan
from tether.plan._roofline import Efficiency
from tether.plan._training import OptimizerName, TrainMode
from tether.plan._units import GIB, format_bytes, format_count
from tether.plan._workload import Workload

app = typer.Typer(
    help="Plan self-hosting a model from its architecture alone: parameters, FLOPs, KV cache, weight and "
    "training memory, roofline speed, and whether it fits a device.",
    no_args_is_help=True,
    add_completion=False,
    invoke_without_command=True,
)
console = Console()

_MODEL, _WORK, _PREC, _DEV, _TRAIN, _SPEC, _OUT = (
    "Model",
    "Workload",
    "Precision",
    "Device",
    "Training",
    "Speculative decoding",
    "Output",
)
_PRECISIONS = ", ".join(PRECISION_NAMES)
_MODES: dict[str, TrainMode] = {"full": "full", "lora": "lora", "qlora": "qlora"}
_OPTIMIZERS: dict[str, OptimizerName] = {"adam": "adam", "adam8bit": "adam8bit", "sgd": "sgd"}


def _fail(message: str) -> typer.Exit:
    return fail(message, USAGE)  # one line on stderr, as every tether command reports errors


def _architecture(preset: str | None, config: Path | None) -> tuple[Architecture, ModelSummary]:
    if (preset is None) == (config is None):
        raise PlanError("give exactly one of --preset NAME or --config path/to/config.json")
    if preset is not None:
        chosen = model_preset(preset)
        summary = ModelSummary(
            name=chosen.name,
            source="preset",
            description=chosen.description,
            published_params=chosen.published_params,
            published_active_params=chosen.published_active_params,
        )
        return preset_architecture(chosen.name), summary
    assert config is not None
    arch = load_config(config)
    return arch, ModelSummary(name=arch.name, source=str(config))


def _context(context: int | None, prompt: int | None, generate: int) -> tuple[int, int]:
    """(prompt, generated) from --context (the total) or --prompt."""
    if prompt is not None and context is not None and prompt + generate != context:
        raise PlanError(f"--prompt {prompt} + --generate {generate} is not --context {context}; give one of them")
    if prompt is None:
        total = 4096 if context is None else context
        if total <= generate:
            raise PlanError(f"--context {total} leaves no room for a prompt before {generate} generated tokens")
        prompt = total - generate
    return prompt, generate


@app.callback()
def plan(
    ctx: typer.Context,
    preset: Annotated[
        str | None,
        typer.Option(help="A built-in model (see `tether plan presets`), e.g. llama-2-7b", rich_help_panel=_MODEL),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="A Hugging Face config.json (or its directory) to read the architecture from", rich_help_panel=_MODEL
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Sequences served together", rich_help_panel=_WORK)] = 1,
    context: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Tokens per sequence, prompt and generated together (4096 unless --prompt is given)",
            rich_help_panel=_WORK,
        ),
    ] = None,
    prompt: Annotated[
        int | None, typer.Option(min=1, help="Prompt tokens per sequence (instead of --context)", rich_help_panel=_WORK)
    ] = None,
    generate: Annotated[int, typer.Option(min=0, help="Tokens generated per sequence", rich_help_panel=_WORK)] = 256,
    prefill_chunk: Annotated[
        int | None,
        typer.Option(
            min=1, help="Tokens a prefill processes at once (chunked prefill); default: all", rich_help_panel=_WORK
        ),
    ] = None,
    weights_precision: Annotated[
        str, typer.Option(help=f"Weight format: {_PRECISIONS}", rich_help_panel=_PREC)
    ] = "bf16",
    kv_precision: Annotated[str, typer.Option(help=f"KV-cache format: {_PRECISIONS}", rich_help_panel=_PREC)] = "bf16",
    activation_precision_: Annotated[
        str,
        typer.Option(
            "--activation-precision",
            help="Activation (compute) format: fp32, bf16, fp16, fp8, int8",
            rich_help_panel=_PREC,
        ),
    ] = "bf16",
    quant_block: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Values per quantization constant for int4/nf4 (128 for int4, 64 for nf4 unless given)",
            rich_help_panel=_PREC,
        ),
    ] = None,
    dq_block: Annotated[
        int | None,
        typer.Option(
            min=1, help="Constants per second-level constant for nf4-dq (256 unless given)", rich_help_panel=_PREC
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="A device preset (see `tether plan devices`)", rich_help_panel=_DEV)
    ] = "h100",
    device_memory: Annotated[
        float | None, typer.Option(min=0.001, help="Override the device's memory, GiB", rich_help_panel=_DEV)
    ] = None,
    device_tflops: Annotated[
        float | None, typer.Option(min=0.001, help="Override the device's 16-bit dense TFLOP/s", rich_help_panel=_DEV)
    ] = None,
    device_bandwidth: Annotated[
        float | None, typer.Option(min=0.001, help="Override the device's memory bandwidth, GB/s", rich_help_panel=_DEV)
    ] = None,
    overhead: Annotated[
        float, typer.Option(min=0, help="Memory the runtime keeps for itself, GiB", rich_help_panel=_DEV)
    ] = 1.0,
    compute_efficiency: Annotated[
        float, typer.Option(min=0.01, max=1, help="Fraction of peak FLOP/s reached", rich_help_panel=_DEV)
    ] = 1.0,
    bandwidth_efficiency: Annotated[
        float, typer.Option(min=0.01, max=1, help="Fraction of peak bandwidth reached", rich_help_panel=_DEV)
    ] = 1.0,
    train: Annotated[
        str | None, typer.Option(help="Also plan fine-tuning: full, lora or qlora", rich_help_panel=_TRAIN)
    ] = None,
    optimizer: Annotated[str, typer.Option(help="adam, adam8bit or sgd", rich_help_panel=_TRAIN)] = "adam",
    checkpointing: Annotated[
        bool,
        typer.Option(help="Activation checkpointing (keep layer inputs, recompute the rest)", rich_help_panel=_TRAIN),
    ] = False,
    lora_rank: Annotated[int, typer.Option(min=1, help="LoRA rank r", rich_help_panel=_TRAIN)] = 16,
    activation_values: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Activations kept per layer per token, in units of d_model (12: the textbook floor; "
            "transformers' eager training keeps about 22 for Llama, see docs/plan-validation.md)",
            rich_help_panel=_TRAIN,
        ),
    ] = 12.0,
    lora_targets: Annotated[
        str,
        typer.Option(
            help="Modules LoRA adapts: names like q,k,v,o,gate,up,down or the groups all-linear, attention, mlp",
            rich_help_panel=_TRAIN,
        ),
    ] = "all-linear",
    speculative: Annotated[
        bool, typer.Option("--speculative", help="Estimate speculative decoding's speed-up", rich_help_panel=_SPEC)
    ] = False,
    acceptance: Annotated[
        float, typer.Option(min=0, max=1, help="Probability α that a draft token is accepted", rich_help_panel=_SPEC)
    ] = 0.8,
    draft_tokens: Annotated[
        int, typer.Option(min=1, help="Tokens γ the draft proposes per verification", rich_help_panel=_SPEC)
    ] = 4,
    draft_cost: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="A draft step's time over a target step's (from --draft-preset's roofline, else 0.05)",
            rich_help_panel=_SPEC,
        ),
    ] = None,
    draft_preset: Annotated[
        str | None,
        typer.Option(help="The draft model, as a preset (its cost comes from the roofline)", rich_help_panel=_SPEC),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON", rich_help_panel=_OUT)] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of memory against context length here", rich_help_panel=_OUT)
    ] = None,
    plot_precisions: Annotated[
        str, typer.Option(help="Weight formats the plot draws, comma-separated", rich_help_panel=_OUT)
    ] = "bf16,fp8,int4,nf4-dq",
) -> None:
    """Plan serving (and optionally fine-tuning) a model on a device; e.g.
    `tether plan --preset llama-2-7b --context 4096 --batch 8 --kv-precision fp16`."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        arch, summary = _architecture(preset, config)
        prompt_tokens, generated = _context(context, prompt, generate)
        blocks = {"block_size": quant_block, "second_block_size": dq_block}
        workload = Workload(
            batch=batch,
            prompt_tokens=prompt_tokens,
            generated_tokens=generated,
            weights=parse_precision(weights_precision, **blocks),
            kv_cache=parse_precision(kv_precision, **blocks),
            activations=activation_precision(activation_precision_),
            prefill_chunk=prefill_chunk,
            overhead_bytes=overhead * GIB,
        )
        chosen_device = custom_device(device_preset(device), device_memory, device_tflops, device_bandwidth)
        training = None
        if train is not None:
            if train not in _MODES:
                raise PlanError(f"unknown --train mode {train!r}; known: {', '.join(_MODES)}")
            if optimizer not in _OPTIMIZERS:
                raise PlanError(f"unknown --optimizer {optimizer!r}; known: {', '.join(_OPTIMIZERS)}")
            training = TrainingRequest(
                mode=_MODES[train],
                optimizer=_OPTIMIZERS[optimizer],
                checkpointing=checkpointing,
                lora_rank=lora_rank,
                lora_targets=lora_targets,
                activation_values=activation_values,
            )
        spec = None
        if speculative or draft_preset is not None or draft_cost is not None:
            spec = SpeculativeRequest(
                acceptance_rate=acceptance,
                draft_tokens=draft_tokens,
                draft_cost=draft_cost,
                draft=preset_architecture(draft_preset) if draft_preset else None,
            )
        result = make_plan(
            arch,
            workload,
            chosen_device,
            model=summary,
            efficiency=Efficiency(compute=compute_efficiency, bandwidth=bandwidth_efficiency),
            training=training,
            speculative=spec,
        )
        if plot is not None:
            from tether.plan._plot import plot_memory

            precisions = [parse_precision(p, **blocks) for p in plot_precisions.split(",") if p.strip()]
            plot_memory(arch, workload, chosen_device, precisions, plot)
    except PlanError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    render_plan(result, console)
    if plot is not None:
        console.print(f"\nplot written to {plot}")


@app.command()
def presets(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False) -> None:
    """List the built-in models with their computed and published parameter counts."""
    counts = {name: count_parameters(preset_architecture(name)) for name in MODEL_PRESETS}
    if as_json:
        rows = [
            {
                "name": name,
                "description": preset.description,
                "params": counts[name].total,
                "active_params": counts[name].active,
                "published_params": preset.published_params,
                "source": preset.source,
            }
            for name, preset in MODEL_PRESETS.items()
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = plain_table("Model presets", "preset", "parameters", "active", "published", "model", notes=True)
    for name, preset in MODEL_PRESETS.items():
        params = counts[name]
        active = format_count(params.active) if params.active != params.total else "-"
        table.add_row(
            name, format_count(params.total), active, format_count(preset.published_params), preset.description
        )
    console.print(table)


@app.command()
def devices(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False) -> None:
    """List the device presets: memory, bandwidth and dense peak FLOP/s per format."""
    if as_json:
        typer.echo(json.dumps([d.model_dump(mode="json") for d in DEVICE_PRESETS.values()], indent=2))
        return
    table = plain_table("Device presets (dense TFLOP/s)", "device", "memory", "GB/s", "FP32", "16-bit", "FP8", "INT8")
    for d in DEVICE_PRESETS.values():
        peaks = [
            f"{d.peak_flops[k] / 1e12:,.1f}" if k in d.peak_flops else "-" for k in ("fp32", "16bit", "fp8", "int8")
        ]
        table.add_row(d.name, format_bytes(d.memory_bytes), f"{d.bandwidth / 1e9:,.0f}", *peaks)
    console.print(table)


@app.command()
def validate(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown table (as in docs/plan-validation.md)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Build small random-weight models with transformers and compare the predictions with measurements
    (needs torch and transformers; uses the GPU too when there is one)."""
    try:
        from tether.plan._validate import markdown_table, measure_all
    except ImportError as exc:  # pragma: no cover
        raise _fail(f"validation needs torch and transformers: {exc}") from exc
    rows = measure_all()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
    elif markdown:
        typer.echo(markdown_table(rows))
    else:
        table = Table("quantity", "predicted", "measured", "error", show_edge=False, pad_edge=False)
        for i, r in enumerate(rows):
            if i == 0 or rows[i - 1].model != r.model:
                table.add_section() if i else None
                table.add_row(f"[bold]{r.model}[/] ({r.device})", "", "", "")
            error = f"{r.error_percent:+.2f}%" + ("" if r.tolerance_percent is not None else " (est.)")
            table.add_row(f"  {r.quantity}", r.predicted_text, r.measured_text, error)
        console.print(table)
