"""Read a model's shape from a Hugging Face ``config.json``.

Each family names its sizes differently (GPT-2's ``n_embd`` is Llama's ``hidden_size``) and hides
different defaults (GPT-2 ties its embeddings, Llama does not; Qwen2 has q/k/v biases, Mistral none).
A family we do not know is read as Llama-style, and the plan says so in its notes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tether.plan._arch import Architecture, LatentAttention, MixtureOfExperts
from tether.plan._errors import PlanError

Config = Mapping[str, Any]


class _Reader:
    """Typed access to config keys; a missing required key is an error that names it."""

    def __init__(self, config: Config, family: str, source: str) -> None:
        self.config, self.family, self.source = config, family, source

    def number(self, *keys: str) -> int:
        """The first of ``keys`` that is set; the first name is the one the error asks for."""
        value = self.optional_number(*keys)
        if value is None:
            raise PlanError(f"{self.source} ({self.family}) lacks required key {keys[0]!r}")
        return value

    def optional_number(self, *keys: str) -> int | None:
        for key in keys:
            value = self.config.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
                    raise PlanError(f"{self.source}: key {key!r} should be a whole number, got {value!r}")
                return int(value)
        return None

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        return default if value is None else bool(value)


def _sliding(reader: _Reader, num_layers: int) -> tuple[int | None, int]:
    """The attention window and how many layers use it; ``layer_types`` says per layer where given."""
    window = reader.optional_number("sliding_window")
    if window is None or (reader.family == "qwen2" and not reader.flag("use_sliding_window", False)):
        return None, 0
    layer_types = reader.config.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == num_layers:
        sliding = sum(1 for kind in layer_types if kind == "sliding_attention")
    elif reader.family == "qwen2":  # Qwen2 keeps full attention below max_window_layers
        sliding = max(0, num_layers - (reader.optional_number("max_window_layers") or 0))
    else:
        sliding = num_layers
    return (window, sliding) if sliding else (None, 0)


def _llama_style(reader: _Reader, name: str) -> Architecture:
    family = reader.family
    d = reader.number("hidden_size")
    layers = reader.number("num_hidden_layers")
    heads = reader.number("num_attention_heads")
    window, sliding_layers = _sliding(reader, layers)
    attention_bias = reader.flag("attention_bias", False)
    moe = None
    experts = reader.optional_number("num_local_experts")
    if experts:
        moe = MixtureOfExperts(
            num_experts=experts,
            experts_per_token=reader.number("num_experts_per_tok"),
            expert_intermediate_size=reader.number("intermediate_size"),
        )
    return Architecture(
        name=name,
        family=family,
        vocab_size=reader.number("vocab_size"),
        hidden_size=d,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=reader.optional_number("num_key_value_heads") or heads,
        head_dim=reader.optional_number("head_dim") or d // heads,
        intermediate_size=reader.number("intermediate_size"),
        # Qwen2 always biases q, k and v (never o); Llama's attention_bias covers all four
        qkv_bias=family == "qwen2" or attention_bias,
        output_bias=attention_bias,
        mlp_bias=reader.flag("mlp_bias", False),
        tied_embeddings=reader.flag("tie_word_embeddings", False),
        max_positions=reader.optional_number("max_position_embeddings"),
        sliding_window=window,
        sliding_layers=sliding_layers,
        moe=moe,
    )


def _gpt2(reader: _Reader, name: str) -> Architecture:
    d = reader.number("n_embd", "hidden_size")
    heads = reader.number("n_head", "num_attention_heads")
    positions = reader.optional_number("n_positions", "n_ctx", "max_position_embeddings") or 1024  # GPT2Config default
    return Architecture(
        name=name,
        family="gpt2",
        vocab_size=reader.number("vocab_size"),
        hidden_size=d,
        num_layers=reader.number("n_layer", "num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=d // heads,
        intermediate_size=reader.optional_number("n_inner") or 4 * d,
        gated_mlp=False,
        qkv_bias=True,
        output_bias=True,
        mlp_bias=True,
        norm_bias=True,
        fused_qkv=True,
        tied_embeddings=reader.flag("tie_word_embeddings", True),
        learned_positions=positions,
        max_positions=positions,
    )


def _gpt_neox(reader: _Reader, name: str) -> Architecture:
    d = reader.number("hidden_size")
    heads = reader.number("num_attention_heads")
    attention_bias = reader.flag("attention_bias", True)
    return Architecture(
        name=name,
        family="gpt_neox",
        vocab_size=reader.number("vocab_size"),
        hidden_size=d,
        num_layers=reader.number("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=d // heads,
        intermediate_size=reader.optional_number("intermediate_size") or 4 * d,
        gated_mlp=False,
        qkv_bias=attention_bias,
        output_bias=attention_bias,
        mlp_bias=True,
        norm_bias=True,
        fused_qkv=True,
        tied_embeddings=reader.flag("tie_word_embeddings", False),
        max_positions=reader.optional_number("max_position_embeddings"),
    )


def _deepseek(reader: _Reader, name: str) -> Architecture:
    d = reader.number("hidden_size")
    heads = reader.number("num_attention_heads")
    nope, rope = reader.number("qk_nope_head_dim"), reader.number("qk_rope_head_dim")
    mla = LatentAttention(
        q_lora_rank=reader.optional_number("q_lora_rank"),
        kv_lora_rank=reader.number("kv_lora_rank"),
        qk_nope_head_dim=nope,
        qk_rope_head_dim=rope,
        v_head_dim=reader.number("v_head_dim"),
    )
    moe = None
    experts = reader.optional_number("n_routed_experts")
    if experts:
        expert_width = reader.number("moe_intermediate_size")
        moe = MixtureOfExperts(
            num_experts=experts,
            experts_per_token=reader.number("num_experts_per_tok"),
            expert_intermediate_size=expert_width,
            shared_intermediate_size=(reader.optional_number("n_shared_experts") or 0) * expert_width,
            dense_layers=reader.optional_number("first_k_dense_replace") or 0,
            layer_frequency=reader.optional_number("moe_layer_freq") or 1,
        )
    attention_bias = reader.flag("attention_bias", False)
    return Architecture(
        name=name,
        family="deepseek_v3",
        vocab_size=reader.number("vocab_size"),
        hidden_size=d,
        num_layers=reader.number("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=nope + rope,
        intermediate_size=reader.number("intermediate_size"),
        qkv_bias=attention_bias,
        output_bias=attention_bias,
        tied_embeddings=reader.flag("tie_word_embeddings", False),
        max_positions=reader.optional_number("max_position_embeddings"),
        moe=moe,
        mla=mla,
    )


_FAMILIES: dict[str, Callable[[_Reader, str], Architecture]] = {
    "llama": _llama_style,
    "mistral": _llama_style,
    "mixtral": _llama_style,
    "qwen2": _llama_style,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "deepseek_v3": _deepseek,
}
_SIMILAR = {"deepseek_v2": "deepseek_v3", "gpt3": "gpt2"}
SUPPORTED_FAMILIES: tuple[str, ...] = tuple(_FAMILIES)


def _guess_family(config: Config) -> str:
    """The family whose keys the config uses, for configs without (or with an unknown) model_type."""
    if "kv_lora_rank" in config:
        return "deepseek_v3"
    if "n_embd" in config:
        return "gpt2"
    if "num_local_experts" in config:
        return "mixtral"
    return "llama"


def architecture_from_config(config: Config, name: str = "model", source: str = "config") -> Architecture:
    """The shape a ``config.json`` describes; ``source`` names the file in errors."""
    if not isinstance(config, Mapping):
        raise PlanError(f"{source} is not a JSON object")
    declared = config.get("model_type")
    notes: list[str] = []
    if isinstance(declared, str) and declared in _FAMILIES:
        family = declared
    elif isinstance(declared, str) and declared in _SIMILAR:
        family = _SIMILAR[declared]
        notes.append(f"model_type {declared!r} read with the {family} rules")
    else:
        family = _guess_family(config)
        what = f"model_type {declared!r} is not one of {', '.join(SUPPORTED_FAMILIES)}" if declared else "no model_type"
        notes.append(f"{what}; read as {family}-style from its keys")
    arch = _FAMILIES[family](_Reader(config, family, source), name)
    if arch.num_heads * arch.head_dim == 0 or arch.num_heads % arch.num_kv_heads:
        raise PlanError(f"{source}: {arch.num_heads} attention heads cannot share {arch.num_kv_heads} KV heads evenly")
    return arch.model_copy(update={"notes": tuple(notes)}) if notes else arch


def load_config(path: str | Path) -> Architecture:
    """Read a Hugging Face ``config.json`` (or the directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise PlanError(f"no config file at {path}") from exc
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path} is not valid JSON: {exc}") from exc
    name = config.get("_name_or_path") if isinstance(config, dict) else None
    return architecture_from_config(config, name=name or path.parent.name or path.stem, source=str(path))
