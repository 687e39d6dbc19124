"""Well-known models, written as the ``config.json`` their publishers ship (read by the same code as a
user's file), with the parameter counts they publish so the tests can hold the formulas to them."""

from __future__ import annotations

from typing import Any

from tether.plan._arch import Architecture
from tether.plan._config import architecture_from_config
from tether.plan._errors import PlanError
from tether.plan._record import Record


class ModelPreset(Record):
    name: str
    description: str
    config: dict[str, Any]
    published_params: float  # as the model card or paper states it
    published_active_params: float | None = None  # mixture-of-experts: per token
    source: str


def _llama(vocab: int, d: int, layers: int, heads: int, kv_heads: int, ffn: int, positions: int) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": d,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": ffn,
        "max_position_embeddings": positions,
        "tie_word_embeddings": False,
    }


_PRESETS = [
    ModelPreset(
        name="llama-2-7b",
        description="Llama 2 7B (MHA, 4k context)",
        config=_llama(32000, 4096, 32, 32, 32, 11008, 4096),
        published_params=6_738_415_616,
        source="meta-llama/Llama-2-7b-hf safetensors total",
    ),
    ModelPreset(
        name="llama-2-13b",
        description="Llama 2 13B (MHA, 4k context)",
        config=_llama(32000, 5120, 40, 40, 40, 13824, 4096),
        published_params=13_015_864_320,
        source="meta-llama/Llama-2-13b-hf safetensors total",
    ),
    ModelPreset(
        name="llama-2-70b",
        description="Llama 2 70B (GQA with 8 KV heads)",
        config=_llama(32000, 8192, 80, 64, 8, 28672, 4096),
        published_params=68_976_648_192,
        source="meta-llama/Llama-2-70b-hf safetensors total",
    ),
    ModelPreset(
        name="llama-3-8b",
        description="Llama 3 8B (GQA, 128k vocabulary)",
        config=_llama(128256, 4096, 32, 32, 8, 14336, 8192),
        published_params=8_030_261_248,
        source="meta-llama/Meta-Llama-3-8B safetensors total",
    ),
    ModelPreset(
        name="llama-3-70b",
        description="Llama 3 70B (GQA, 128k vocabulary)",
        config=_llama(128256, 8192, 80, 64, 8, 28672, 8192),
        published_params=70_553_706_496,
        source="meta-llama/Meta-Llama-3-70B safetensors total",
    ),
    ModelPreset(
        name="llama-3.1-405b",
        description="Llama 3.1 405B (GQA, 128k context)",
        config=_llama(128256, 16384, 126, 128, 8, 53248, 131072),
        published_params=405e9,
        source="Llama 3 herd of models paper: 405B",
    ),
    ModelPreset(
        name="mistral-7b",
        description="Mistral 7B v0.1 (GQA, 4k sliding window)",
        config={
            "model_type": "mistral",
            "vocab_size": 32000,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "max_position_embeddings": 32768,
            "sliding_window": 4096,
            "tie_word_embeddings": False,
        },
        published_params=7_241_732_096,
        source="mistralai/Mistral-7B-v0.1 safetensors total",
    ),
    ModelPreset(
        name="mixtral-8x7b",
        description="Mixtral 8x7B (8 experts, 2 per token)",
        config={
            "model_type": "mixtral",
            "vocab_size": 32000,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "max_position_embeddings": 32768,
            "sliding_window": None,
            "tie_word_embeddings": False,
        },
        published_params=46_702_792_704,
        published_active_params=12.9e9,
        source="mistralai/Mixtral-8x7B-v0.1 safetensors total; 12.9B active per the Mixtral announcement",
    ),
    ModelPreset(
        name="qwen2-7b",
        description="Qwen2 7B (GQA with 4 KV heads, q/k/v biases)",
        config={
            "model_type": "qwen2",
            "vocab_size": 152064,
            "hidden_size": 3584,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "intermediate_size": 18944,
            "max_position_embeddings": 131072,
            "sliding_window": 131072,
            "use_sliding_window": False,
            "max_window_layers": 28,
            "tie_word_embeddings": False,
        },
        published_params=7_615_616_512,
        source="Qwen/Qwen2-7B safetensors total",
    ),
    ModelPreset(
        name="deepseek-v3",
        description="DeepSeek-V3 (MLA, 256 routed experts, 8 per token)",
        config={
            "model_type": "deepseek_v3",
            "vocab_size": 129280,
            "hidden_size": 7168,
            "num_hidden_layers": 61,
            "num_attention_heads": 128,
            "num_key_value_heads": 128,
            "intermediate_size": 18432,
            "moe_intermediate_size": 2048,
            "n_routed_experts": 256,
            "n_shared_experts": 1,
            "num_experts_per_tok": 8,
            "first_k_dense_replace": 3,
            "moe_layer_freq": 1,
            "q_lora_rank": 1536,
            "kv_lora_rank": 512,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
            "max_position_embeddings": 163840,
            "tie_word_embeddings": False,
        },
        published_params=671e9,
        published_active_params=37e9,
        source="DeepSeek-V3 technical report: 671B total, 37B activated (the 14B multi-token-prediction module aside)",
    ),
    ModelPreset(
        name="gpt2",
        description="GPT-2 small (learned positions, tied embeddings)",
        config={
            "model_type": "gpt2",
            "vocab_size": 50257,
            "n_embd": 768,
            "n_layer": 12,
            "n_head": 12,
            "n_positions": 1024,
        },
        published_params=124_439_808,
        source="openai-community/gpt2 safetensors total",
    ),
    ModelPreset(
        name="gpt-3-175b",
        description="GPT-3 175B (96 layers, 96 heads of 128, 2k context)",
        config={
            "model_type": "gpt2",
            "vocab_size": 50257,
            "n_embd": 12288,
            "n_layer": 96,
            "n_head": 96,
            "n_positions": 2048,
        },
        published_params=175e9,
        source="Brown et al. 2020, Table 2.1",
    ),
    ModelPreset(
        name="pythia-6.9b",
        description="Pythia 6.9B (GPT-NeoX, untied embeddings)",
        config={
            "model_type": "gpt_neox",
            "vocab_size": 50432,
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "intermediate_size": 16384,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": False,
        },
        published_params=6_857_302_016,
        source="EleutherAI/pythia-6.9b safetensors total",
    ),
]

MODEL_PRESETS: dict[str, ModelPreset] = {preset.name: preset for preset in _PRESETS}
_ALIASES = {"gpt-3": "gpt-3-175b", "gpt3": "gpt-3-175b", "mixtral": "mixtral-8x7b", "deepseek-v3-671b": "deepseek-v3"}


def model_preset(name: str) -> ModelPreset:
    """A preset by name (case and ``_`` vs ``-`` do not matter); unknown names list the known ones."""
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in MODEL_PRESETS:
        raise PlanError(f"unknown model preset {name!r}; known: {', '.join(MODEL_PRESETS)}")
    return MODEL_PRESETS[key]


def preset_architecture(name: str) -> Architecture:
    preset = model_preset(name)
    return architecture_from_config(preset.config, name=preset.name, source=f"preset {preset.name}")
