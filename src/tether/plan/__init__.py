"""Capacity planning for self-hosted models, from the architecture alone.

Will it fit, how long will a context of N tokens take, what do quantization and LoRA save: parameter
counts, FLOPs per token, KV cache, weight and training memory, roofline speed and speculative decoding,
in pure Python (no torch) so the ``tether plan`` command answers at once. ``docs/plan.md`` has the formulas;
``docs/plan-validation.md`` compares them with models built by ``transformers``.
"""

from __future__ import annotations

from tether.plan._arch import Architecture, LatentAttention, MixtureOfExperts
from tether.plan._config import SUPPORTED_FAMILIES, architecture_from_config, load_config
from tether.plan._devices import DEVICE_PRESETS, Device, custom_device, device_preset
from tether.plan._errors import PlanError
from tether.plan._flops import FlopCount, attended_positions, decode_flops, prefill_flops, projection_flops
from tether.plan._kv import KvCache, kv_cache, kv_cache_bytes, kv_values_per_token_per_layer
from tether.plan._lora import LoraAdapters, lora_adapters
from tether.plan._memory import FitLimits, InferenceMemory, fit_limits, inference_memory
from tether.plan._params import ParameterCount, count_parameters
from tether.plan._plan import ModelSummary, Plan, SpeculativeRequest, TrainingRequest, make_plan
from tether.plan._plot import plot_memory
from tether.plan._precision import PRECISION_NAMES, Precision, parse_precision
from tether.plan._presets import MODEL_PRESETS, ModelPreset, model_preset, preset_architecture
from tether.plan._roofline import Efficiency, PhaseTime, SpeedEstimate, estimate_speed
from tether.plan._speculative import (
    SpeculativeEstimate,
    expected_tokens_per_verification,
    speculative_estimate,
    speculative_speedup,
)
from tether.plan._training import TrainingMemory, activation_bytes_per_token, training_memory
from tether.plan._weights import weight_bytes, weight_bytes_by_precision
from tether.plan._workload import Workload

__all__ = [
    "DEVICE_PRESETS",
    "MODEL_PRESETS",
    "PRECISION_NAMES",
    "SUPPORTED_FAMILIES",
    "Architecture",
    "Device",
    "Efficiency",
    "FitLimits",
    "FlopCount",
    "InferenceMemory",
    "KvCache",
    "LatentAttention",
    "LoraAdapters",
    "MixtureOfExperts",
    "ModelPreset",
    "ModelSummary",
    "ParameterCount",
    "PhaseTime",
    "Plan",
    "PlanError",
    "Precision",
    "SpeculativeEstimate",
    "SpeculativeRequest",
    "SpeedEstimate",
    "TrainingMemory",
    "TrainingRequest",
    "Workload",
    "activation_bytes_per_token",
    "architecture_from_config",
    "attended_positions",
    "count_parameters",
    "custom_device",
    "decode_flops",
    "device_preset",
    "estimate_speed",
    "expected_tokens_per_verification",
    "fit_limits",
    "inference_memory",
    "kv_cache",
    "kv_cache_bytes",
    "kv_values_per_token_per_layer",
    "load_config",
    "lora_adapters",
    "make_plan",
    "model_preset",
    "parse_precision",
    "plot_memory",
    "prefill_flops",
    "preset_architecture",
    "projection_flops",
    "speculative_estimate",
    "speculative_speedup",
    "training_memory",
    "weight_bytes",
    "weight_bytes_by_precision",
]
