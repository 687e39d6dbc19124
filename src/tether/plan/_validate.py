"""Check the planner against real models: small random-weight ``transformers`` models built from configs
(nothing downloaded), their parameters counted, their weight and KV-cache bytes measured.

torch and transformers are imported inside the functions (through importlib, so type checkers do not
walk them): the planner itself never needs them.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from tether.plan._config import load_config
from tether.plan._kv import kv_cache_bytes
from tether.plan._params import count_parameters
from tether.plan._precision import parse_precision
from tether.plan._record import Record
from tether.plan._training import training_memory
from tether.plan._weights import weight_bytes


class ValidationCase(Record):
    """A model to build: a transformers config class, its (small) sizes, and the forward pass to run."""

    name: str
    config_class: str
    config: dict[str, Any]
    batch: int = 2
    tokens: int = 64


class ValidationRow(Record):
    derived = ("error_percent",)

    model: str
    quantity: str
    predicted: float
    measured: float
    unit: str  # "params" or "bytes"
    device: str = "cpu"
    # the error the planner promises for this quantity; None: an estimate shown for information
    tolerance_percent: float | None = 10.0

    @property
    def error_percent(self) -> float:
        return 100.0 * (self.predicted - self.measured) / self.measured if self.measured else 0.0

    def _text(self, value: float) -> str:
        return f"{value:,.0f}" if self.unit == "params" else f"{value:,.0f} B"

    @property
    def predicted_text(self) -> str:
        return self._text(self.predicted)

    @property
    def measured_text(self) -> str:
        return self._text(self.measured)


_SMALL = {"vocab_size": 512, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}

CPU_CASES: list[ValidationCase] = [
    ValidationCase(
        name="llama (GQA 8:2)",
        config_class="LlamaConfig",
        config={
            **_SMALL,
            "num_hidden_layers": 3,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "intermediate_size": 344,
        },
    ),
    ValidationCase(
        name="mistral (sliding window 64)",
        config_class="MistralConfig",
        config={**_SMALL, "num_key_value_heads": 2, "intermediate_size": 256, "sliding_window": 64},
        tokens=96,
    ),
    ValidationCase(
        name="mixtral (4 experts, top-2, MQA)",
        config_class="MixtralConfig",
        config={
            **_SMALL,
            "num_key_value_heads": 1,
            "intermediate_size": 192,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
        },
    ),
    ValidationCase(
        name="qwen2 (q/k/v bias, tied)",
        config_class="Qwen2Config",
        config={**_SMALL, "num_key_value_heads": 2, "intermediate_size": 256, "tie_word_embeddings": True},
    ),
    ValidationCase(
        name="gpt2 (learned positions, tied)",
        config_class="GPT2Config",
        config={
            "vocab_size": 512,
            "n_embd": 128,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 128,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
    ),
    ValidationCase(
        name="gpt-neox (parallel, untied)",
        config_class="GPTNeoXConfig",
        config={
            **_SMALL,
            "intermediate_size": 512,
            "max_position_embeddings": 128,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
    ),
    ValidationCase(
        name="deepseek-v3 (MLA, shared + routed experts)",
        config_class="DeepseekV3Config",
        config={
            **_SMALL,
            "num_hidden_layers": 3,
            "intermediate_size": 256,
            "moe_intermediate_size": 64,
            "first_k_dense_replace": 1,
            "n_routed_experts": 8,
            "num_experts_per_tok": 2,
            "n_shared_experts": 1,
            "n_group": 2,
            "topk_group": 1,
            "num_key_value_heads": 4,
            "q_lora_rank": 64,
            "kv_lora_rank": 32,
            "qk_nope_head_dim": 16,
            "qk_rope_head_dim": 8,
            "v_head_dim": 16,
        },
    ),
]

# a dense SwiGLU model and a GELU one, to see how far the 12-values activation estimate is from each
TRAINING_CASES: list[ValidationCase] = [
    ValidationCase(
        name="llama 256×4 (training step)",
        config_class="LlamaConfig",
        config={
            **_SMALL,
            "hidden_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 8,
            "intermediate_size": 688,
        },
        tokens=128,
    ),
    ValidationCase(
        name="gpt2 256×4 (training step)",
        config_class="GPT2Config",
        config={
            "vocab_size": 512,
            "n_embd": 256,
            "n_layer": 4,
            "n_head": 8,
            "n_positions": 128,
            "bos_token_id": 0,
            "eos_token_id": 0,
            # no dropout, as in most fine-tuning: its masks would add to what autograd keeps
            "attn_pdrop": 0.0,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
        },
        tokens=128,
    ),
]

# on a GPU the caching allocator rounds every block up to 512 bytes, so use models whose tensors dwarf that
GPU_CASES: list[ValidationCase] = [
    ValidationCase(
        name="llama 1024×4 (GQA 16:4)",
        config_class="LlamaConfig",
        config={
            "vocab_size": 32000,
            "hidden_size": 1024,
            "intermediate_size": 2816,
            "num_hidden_layers": 4,
            "num_attention_heads": 16,
            "num_key_value_heads": 4,
        },
        batch=4,
        tokens=2048,
    ),
    ValidationCase(
        name="gpt2 1024×4",
        config_class="GPT2Config",
        config={
            "vocab_size": 32000,
            "n_embd": 1024,
            "n_layer": 4,
            "n_head": 16,
            "n_positions": 2048,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
        batch=4,
        tokens=2048,
    ),
]


def _modules() -> tuple[Any, Any]:
    transformers = importlib.import_module("transformers")
    transformers.utils.logging.disable_progress_bar()  # save_pretrained's shard bar is noise here
    return importlib.import_module("torch"), transformers


def build(case: ValidationCase, directory: Path) -> tuple[Any, Path]:
    """The random-weight model of ``case``, and the config.json transformers wrote for it."""
    torch, transformers = _modules()
    torch.manual_seed(0)
    config = getattr(transformers, case.config_class)(**case.config)
    path = directory / "config.json"
    config.to_json_file(path)
    return transformers.AutoModelForCausalLM.from_config(config), path


def cache_tensors(cache: Any) -> list[Any]:
    """The key and value tensors a transformers cache holds (DynamicCache and its sliding layers)."""
    tensors = []
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is not None and hasattr(tensor, "nbytes"):
                tensors.append(tensor)
    return tensors


def _forward_cache(model: Any, case: ValidationCase, device: str = "cpu") -> Any:
    torch, _ = _modules()
    ids = torch.randint(0, model.config.vocab_size, (case.batch, case.tokens), device=device)
    with torch.no_grad():  # logits for the last position only: the cache is what is measured
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return getattr(out, "cache", None) or out.past_key_values


def measure_cpu(case: ValidationCase) -> list[ValidationRow]:
    """Parameters, FP32 and BF16 weight bytes, weights on disk, and the BF16 KV cache of a forward pass."""
    torch, _ = _modules()
    rows: list[ValidationRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        model, config_path = build(case, Path(tmp))
        arch = load_config(config_path)
        params = count_parameters(arch)

        def row(quantity: str, predicted: float, measured: float, unit: str = "bytes") -> None:
            rows.append(
                ValidationRow(model=case.name, quantity=quantity, predicted=predicted, measured=measured, unit=unit)
            )

        row("parameters", params.total, sum(p.numel() for p in model.parameters()), "params")
        row("weights fp32", weight_bytes(params, parse_precision("fp32")), _tensor_bytes(model.parameters()))
        model = model.to(torch.bfloat16)
        row("weights bf16", weight_bytes(params, parse_precision("bf16")), _tensor_bytes(model.parameters()))
        model.save_pretrained(Path(tmp) / "saved")
        row(
            "bf16 safetensors file",
            weight_bytes(params, parse_precision("bf16")),
            sum(f.stat().st_size for f in (Path(tmp) / "saved").glob("*.safetensors")),
        )
        cache = _forward_cache(model, case)
        row(
            f"KV cache bf16, {case.batch}×{case.tokens} tokens",
            kv_cache_bytes(arch, parse_precision("bf16"), case.batch, case.tokens),
            sum(t.nbytes for t in cache_tensors(cache)),
        )
    return rows


def measure_gpu(case: ValidationCase) -> list[ValidationRow]:
    """Weights and KV cache as the CUDA allocator sees them (torch.cuda.max_memory_allocated)."""
    torch, _ = _modules()
    rows: list[ValidationRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        model, config_path = build(case, Path(tmp))
        arch = load_config(config_path)
        params = count_parameters(arch)
        bf16 = parse_precision("bf16")
        model = model.to(torch.bfloat16)  # cast here, so no FP32 copy ever reaches the GPU
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        model = model.to("cuda")
        torch.cuda.synchronize()
        weights = torch.cuda.max_memory_allocated() - start
        rows.append(
            ValidationRow(
                model=case.name,
                quantity="weights bf16 (CUDA)",
                predicted=weight_bytes(params, bf16),
                measured=weights,
                unit="bytes",
                device="cuda",
            )
        )
        before = torch.cuda.memory_allocated()
        cache = _forward_cache(model, case, "cuda")  # logits and activations are freed on return
        torch.cuda.synchronize()
        held = torch.cuda.memory_allocated() - before
        rows.append(
            ValidationRow(
                model=case.name,
                quantity=f"KV cache bf16, {case.batch}×{case.tokens} tokens (CUDA)",
                predicted=kv_cache_bytes(arch, bf16, case.batch, case.tokens),
                measured=held,
                unit="bytes",
                device="cuda",
            )
        )
        del cache, model
        torch.cuda.empty_cache()
    return rows


def measure_training(case: ValidationCase) -> list[ValidationRow]:
    """One FP32 training step: gradient and Adam-state bytes against the plan, and the activations autograd
    saves against the 12-values-per-layer estimate (informative: that estimate is a floor)."""
    torch, _ = _modules()
    with tempfile.TemporaryDirectory() as tmp:
        model, config_path = build(case, Path(tmp))
        arch = load_config(config_path)
    params = count_parameters(arch)
    fp32 = parse_precision("fp32")
    plan = training_memory(
        arch,
        params,
        mode="full",
        weights=fp32,
        activations=fp32,
        batch=case.batch,
        sequence=case.tokens,
        device_memory=float("inf"),
    )
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(tensor: Any) -> Any:  # autograd hands over each tensor it saves for the backward pass
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, model.config.vocab_size, (case.batch, case.tokens))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.step()
    moments = [t for state in optimizer.state.values() for k, t in state.items() if k in ("exp_avg", "exp_avg_sq")]

    def row(quantity: str, predicted: float, measured: float, tolerance: float | None = 10.0) -> ValidationRow:
        return ValidationRow(
            model=case.name,
            quantity=quantity,
            predicted=predicted,
            measured=measured,
            unit="bytes",
            tolerance_percent=tolerance,
        )

    return [
        row("gradients fp32", plan.gradients, _tensor_bytes(p.grad for p in model.parameters())),
        row("Adam moments fp32", plan.optimizer_states, _tensor_bytes(moments)),
        row(
            f"activations fp32, {case.batch}×{case.tokens} (12·d·L estimate)",
            plan.activations,
            sum(saved.values()),
            None,
        ),
    ]


def _tensor_bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_all(gpu: bool | None = None) -> list[ValidationRow]:
    """Every CPU case, and the GPU cases when ``gpu`` (default: when CUDA is available)."""
    torch, _ = _modules()
    rows = [row for case in CPU_CASES for row in measure_cpu(case)]
    rows += [row for case in TRAINING_CASES for row in measure_training(case)]
    if gpu if gpu is not None else torch.cuda.is_available():
        rows += [row for case in GPU_CASES for row in measure_gpu(case)]
    return rows


def markdown_table(rows: list[ValidationRow]) -> str:
    lines = ["| model | quantity | predicted | measured | error % |", "|---|---|---:|---:|---:|"]
    for r in rows:
        error = f"{r.error_percent:+.2f}" + ("" if r.tolerance_percent is not None else " (estimate)")
        lines.append(f"| {r.model} | {r.quantity} | {r.predicted_text} | {r.measured_text} | {error} |")
    return "\n".join(lines)
