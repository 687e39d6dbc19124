"""The plan as rich tables for the terminal."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tether.plan._plan import Plan
from tether.plan._precision import parse_precision
from tether.plan._units import format_bytes, format_count, format_flops, format_seconds


def plain_table(title: str, *columns: str, notes: bool = False) -> Table:
    """A borderless table: a label column, right-aligned figures, and with ``notes`` a last column of
    left-aligned words that wraps before the figures do."""
    table = Table(
        title=title, title_justify="left", title_style="bold", caption_justify="left", show_edge=False, pad_edge=False
    )
    last = len(columns) - 1
    for i, column in enumerate(columns):
        wraps = notes and i == last
        table.add_column(column, justify="left" if i == 0 or wraps else "right", no_wrap=not wraps)
    return table


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _verdict(plan: Plan) -> Panel:
    memory, limits, work = plan.memory, plan.limits, plan.workload
    used = f"{format_bytes(memory.total)} of {format_bytes(memory.device_memory)} on {plan.device.name}"
    if memory.fits:
        head = Text(f"FITS: {used} ({format_bytes(memory.headroom)} free)", style="bold green")
    else:
        head = Text(f"DOES NOT FIT: needs {used}", style="bold red")
    lines = [head]
    batch = (
        f"largest batch at {work.context:,} tokens: {limits.max_batch:,}"
        if limits.max_batch
        else (f"not one sequence of {work.context:,} tokens fits")
    )
    if limits.max_context is None:
        context = f"largest context at batch {work.batch}: not limited by memory"
    elif limits.max_context:
        context = f"largest context at batch {work.batch}: {limits.max_context:,} tokens"
    else:
        context = f"no context fits at batch {work.batch}"
    if limits.model_max_context:
        context += f" (the model was trained for {limits.model_max_context:,})"
    lines += [Text(batch), Text(context)]
    if limits.model_max_context and work.context > limits.model_max_context:
        lines.append(Text(f"note: {work.context:,} tokens is past the model's {limits.model_max_context:,}", "yellow"))
    return Panel(Group(*lines), expand=False)


def _header(plan: Plan) -> Text:
    arch, work, model = plan.architecture, plan.workload, plan.model
    moe = ""
    if arch.moe:
        moe = f", {arch.moe.num_experts} experts ({arch.moe.experts_per_token} per token) in {arch.moe_layers} layers"
    text = Text.assemble(
        (model.name, "bold cyan"),
        f"  {model.description + ' — ' if model.description else ''}{model.source}\n",
        f"{arch.num_layers} layers, d_model {arch.hidden_size}, {arch.num_heads} heads of {arch.query_key_dim}, "
        f"{arch.attention_kind}, MLP {arch.intermediate_size}{moe}, vocabulary {arch.vocab_size:,}\n",
        f"workload: batch {work.batch} × {work.context:,} tokens ({work.prompt_tokens:,} prompt + "
        f"{work.generated_tokens:,} generated); weights {work.weights.name}, KV cache {work.kv_cache.name}, "
        f"activations {work.activations.name}",
    )
    for note in arch.notes:
        text.append(f"\nnote: {note}", style="yellow")
    return text


def _parameters(plan: Plan) -> Table:
    params = plan.parameters
    table = plain_table("Parameters", "part", "count", "share")
    for label, count in params.parts().items():
        table.add_row(label, f"{count:,}", _share(count, params.total))
    table.add_section()
    table.add_row("total", f"{params.total:,}", format_count(params.total), style="bold")
    if params.active != params.total:
        table.add_row("active per token", f"{params.active:,}", format_count(params.active), style="bold")
    if plan.model.published_params:
        published = format_count(plan.model.published_params)
        if plan.model.published_active_params:
            published += f" ({format_count(plan.model.published_active_params)} active)"
        table.add_row("published", "", published)
    return table


def _memory(plan: Plan) -> Table:
    memory, work, kv = plan.memory, plan.workload, plan.kv_cache
    table = plain_table("Memory to serve", "part", "bytes", "how", notes=True)
    table.add_row("weights", format_bytes(memory.weights), work.weights.describe())
    cached = " + ".join(f"{tokens:,} ({kind} layers)" for kind, tokens in kv.cached_tokens_per_layer.items())
    table.add_row(
        "KV cache",
        format_bytes(memory.kv_cache),
        f"{format_bytes(kv.bytes_per_token)}/token × {cached} × batch {kv.batch}; {kv.layout}, {kv.precision}",
    )
    table.add_row("activations", format_bytes(memory.activations), "one prefill layer, last logits")
    if memory.draft_model:
        table.add_row("draft model", format_bytes(memory.draft_model), "speculative draft: weights, KV cache")
    table.add_row("reserve", format_bytes(memory.overhead), "CUDA context, allocator slack")
    table.add_section()
    table.add_row("total", format_bytes(memory.total), f"of {format_bytes(memory.device_memory)}", style="bold")
    return table


def _weights(plan: Plan) -> Table:
    table = plain_table("Weights by precision", "precision", "bits/value", "bits/param", "bytes", "fits alone")
    total = plan.parameters.total
    for name, size in plan.weights_by_precision.items():
        precision = parse_precision(name)
        fits = "yes" if size + plan.workload.overhead_bytes <= plan.device.memory_bytes else "no"
        style = "bold" if name == plan.workload.weights.name else None
        bits = f"{precision.bits_per_value:.3f}"
        table.add_row(name, bits, f"{8 * size / total:.3f}", format_bytes(size), fits, style=style)
    table.caption = (
        "bits/value counts quantization constants (int4: FP16 scale + 4-bit zero per 128; nf4: FP32 absmax per 64;"
        " nf4-dq: 8-bit absmax per 64, FP32 per 256); below 16 bits, embeddings, LM head, norms and biases stay bf16"
    )
    return table


def _flops(plan: Plan) -> Table:
    prefill, decode = plan.prefill_flops, plan.decode_flops
    table = plain_table("FLOPs per token (forward)", "part", "prefill", "share", "decode", "share")
    labels = list(dict.fromkeys([*prefill.parts(), *decode.parts()]))
    for label in labels:
        p, d = prefill.parts().get(label, 0.0), decode.parts().get(label, 0.0)
        table.add_row(label, format_flops(p), _share(p, prefill.total), format_flops(d), _share(d, decode.total))
    table.add_section()
    table.add_row("total", format_flops(prefill.total), "", format_flops(decode.total), "", style="bold")
    return table


def _speed(plan: Plan) -> Table:
    speed, work = plan.speed, plan.workload
    table = plain_table(
        f"Speed on {plan.device.name} (roofline: an upper bound)", "phase", "time", "tokens/s", "moves", "bound"
    )
    for label, phase in (
        (f"prefill {work.batch} × {work.prompt_tokens:,}", speed.prefill),
        (f"decode step, batch {work.batch}", speed.decode_step),
    ):
        bound = "compute" if phase.bound == "compute" else "bandwidth"
        rate = f"{phase.tokens_per_second:,.0f}"
        table.add_row(label, format_seconds(phase.seconds), rate, format_bytes(phase.bytes_moved), bound)
    table.add_section()
    table.add_row("time to first token", format_seconds(speed.time_to_first_token), "", "", "")
    per_sequence = f"{speed.decode_tokens_per_second_per_sequence:,.1f}"
    table.add_row("decode, per sequence", "", per_sequence, "", "", style="bold")
    table.add_row(f"request, {work.generated_tokens:,} tokens out", format_seconds(speed.total_seconds), "", "", "")
    table.caption = (
        f"FLOP per byte moved: prefill {speed.prefill.arithmetic_intensity:,.0f}, decode "
        f"{speed.decode_step.arithmetic_intensity:,.1f}; the device's ridge point is {speed.ridge_intensity:,.0f}. "
        f"Assumed {plan.efficiency.compute:.0%} of peak FLOP/s and {plan.efficiency.bandwidth:.0%} of bandwidth."
    )
    return table


def _speculative(plan: Plan) -> Table | None:
    spec = plan.speculative
    if spec is None:
        return None
    table = plain_table("Speculative decoding", "quantity", "value", notes=True)
    per_sequence = plan.speed.decode_tokens_per_second_per_sequence * spec.speedup
    rows = [
        ("acceptance rate α", f"{spec.acceptance_rate:.2f}"),
        ("draft tokens γ per verification", str(spec.draft_tokens)),
        ("draft step cost c (× target step)", f"{spec.draft_cost:.3f}, {spec.draft_cost_source}"),
        ("tokens per verification", f"{spec.expected_tokens_per_verification:.2f} = (1 − α^(γ+1)) / (1 − α)"),
        ("speed-up", f"{spec.speedup:.2f}× = tokens per verification / (γ·c + 1)"),
        ("decode per sequence", f"{per_sequence:,.1f} tokens/s"),
        ("best γ for this α and c", f"{spec.best_draft_tokens} ({spec.best_speedup:.2f}×)"),
    ]
    for label, value in rows:
        table.add_row(label, escape(value), style="bold" if label == "speed-up" else None)
    return table


def _training(plan: Plan) -> Table | None:
    train = plan.training
    if train is None:
        return None
    title = f"Training memory: {train.mode}"
    if train.lora:
        title += f" (rank {train.lora.rank} on {', '.join(train.lora.targets)})"
    table = plain_table(title, "part", "bytes", "how", notes=True)
    adam = {"adam": "Adam: 2 FP32 moments", "adam8bit": "8-bit Adam: 2 blockwise int8 moments", "sgd": "SGD momentum"}
    how = {
        "weights": f"{train.total_params:,} params in {train.base_precision}",
        "LoRA adapters": f"{train.trainable_params:,} trainable params in FP32",
        "FP32 master weights": "mixed precision keeps an FP32 copy",
        "gradients": f"{train.trainable_params:,} trainable params",
        "optimizer states": adam[train.optimizer],
        "activations": f"{train.tokens:,} tokens × {format_bytes(train.activation_bytes_per_token)}"
        + (" (checkpointed)" if train.checkpointing else ""),
    }
    for label, size in train.parts().items():
        table.add_row(label, format_bytes(size), how[label])
    table.add_section()
    verdict = "fits" if train.fits else "does not fit"
    table.add_row("total", format_bytes(train.total), f"{verdict} in {format_bytes(train.device_memory)}", style="bold")
    if plan.training_max_batch is not None:
        table.add_row("largest batch", str(plan.training_max_batch), f"at {plan.workload.context:,} tokens")
    peak = plan.device.flops_for(plan.workload.activations.compute or "16bit") * plan.efficiency.compute
    table.caption = (
        f"activations per token: {train.activation_formula}\n"
        f"{format_flops(train.flops_per_token)} per token forward + backward: "
        f"≤ {peak / train.flops_per_token:,.0f} tokens/s on {plan.device.name}"
    )
    return table


def render_plan(plan: Plan, console: Console) -> None:
    console.print(_header(plan))
    console.print(_verdict(plan))
    sections = [
        _parameters(plan),
        _memory(plan),
        _weights(plan),
        _flops(plan),
        _speed(plan),
        _speculative(plan),
        _training(plan),
    ]
    for section in sections:
        if section is not None:
            console.print()
            console.print(section)
