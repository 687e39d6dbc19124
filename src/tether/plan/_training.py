"""Memory to fine-tune: weights, gradients, optimizer states and activations, for full fine-tuning,
LoRA and QLoRA.

Full fine-tuning in mixed precision keeps 16-bit weights and gradients plus an FP32 master copy and
Adam's two FP32 moments: 2 + 2 + 4 + 8 = 16 bytes per parameter, as in FP32 (4 + 4 + 8). LoRA freezes the
base weights and trains small adapters (FP32, as PEFT keeps them), so only those carry gradients and
optimizer states; QLoRA also stores the frozen base in 4-bit NF4.

Activations kept for the backward pass are estimated at 12 values per layer per token of width d_model:

    activations per token = 12 × d_model × layers × bytes per value

(the inputs of the q/k/v, output and MLP matrices, the attention output, norms and residuals, with a
fused attention that stores no context × context scores). With activation checkpointing each layer keeps
only its input, and one layer's activations are rebuilt at a time:

    activations per token = (layers + 12) × d_model × bytes per value
"""

from __future__ import annotations

from typing import Literal

from tether.plan._arch import Architecture
from tether.plan._errors import PlanError
from tether.plan._lora import LoraAdapters, lora_adapters
from tether.plan._params import ParameterCount
from tether.plan._precision import Precision, parse_precision
from tether.plan._record import Record
from tether.plan._weights import weight_bytes

TrainMode = Literal["full", "lora", "qlora"]
OptimizerName = Literal["adam", "adam8bit", "sgd"]

VALUES_PER_LAYER = 12
_FP32 = parse_precision("fp32")
# bitsandbytes 8-bit Adam: two 8-bit moments with one FP32 absmax per block of 2048 values
_ADAM8BIT_STATE = parse_precision("int8").model_copy(
    update={"name": "int8-block2048", "block_size": 2048, "constant_bits": 32}
)
OPTIMIZER_BYTES: dict[OptimizerName, float] = {
    "adam": 2 * _FP32.bytes_per_value,  # first and second moments in FP32
    "adam8bit": 2 * _ADAM8BIT_STATE.bytes_per_value,
    "sgd": _FP32.bytes_per_value,  # momentum
}
# matmul passes per token: forward, then input and weight gradients; adapters skip the frozen weights' gradients
_PASSES: dict[TrainMode, int] = {"full": 3, "lora": 2, "qlora": 2}


class TrainingMemory(Record):
    derived = ("total", "fits")

    mode: TrainMode
    optimizer: OptimizerName
    checkpointing: bool
    base_precision: str
    total_params: int
    trainable_params: int
    lora: LoraAdapters | None
    tokens: int  # batch × sequence length
    weights: float  # the model (frozen or not), in its stored format
    adapters: float
    master_weights: float  # FP32 copy of 16-bit trainable weights
    gradients: float
    optimizer_states: float
    activations: float
    activation_bytes_per_token: float
    activation_formula: str
    flops_per_token: float  # forward and backward, with recomputation when checkpointing
    device_memory: float

    @property
    def total(self) -> float:
        return (
            self.weights
            + self.adapters
            + self.master_weights
            + self.gradients
            + self.optimizer_states
            + self.activations
        )

    @property
    def fits(self) -> bool:
        return self.total <= self.device_memory

    def parts(self) -> dict[str, float]:
        labelled = {
            "weights": self.weights,
            "LoRA adapters": self.adapters,
            "FP32 master weights": self.master_weights,
            "gradients": self.gradients,
            "optimizer states": self.optimizer_states,
            "activations": self.activations,
        }
        return {label: value for label, value in labelled.items() if value}


def activation_bytes_per_token(
    arch: Architecture, precision: Precision, checkpointing: bool, values_per_layer: float = VALUES_PER_LAYER
) -> tuple[float, str]:
    """Bytes per token kept for the backward pass, and the formula as the tables print it."""
    d, layers, size, k = arch.hidden_size, arch.num_layers, precision.bytes_per_value, f"{values_per_layer:g}"
    if checkpointing:
        value = (layers + values_per_layer) * d * size
        formula = f"(layers + {k}) × d_model × bytes = ({layers} + {k}) × {d} × {size:g} B"
    else:
        value = values_per_layer * d * layers * size
        formula = f"{k} × d_model × layers × bytes = {k} × {d} × {layers} × {size:g} B"
    return value, formula


def training_memory(
    arch: Architecture,
    params: ParameterCount,
    *,
    mode: TrainMode,
    weights: Precision,
    activations: Precision,
    batch: int,
    sequence: int,
    device_memory: float,
    optimizer: OptimizerName = "adam",
    checkpointing: bool = False,
    lora_rank: int = 16,
    lora_targets: str = "all-linear",
    forward_flops_per_token: float = 0.0,
    values_per_layer: float = VALUES_PER_LAYER,
) -> TrainingMemory:
    if mode not in _PASSES:
        raise PlanError(f"unknown training mode {mode!r}; known: {', '.join(_PASSES)}")
    if optimizer not in OPTIMIZER_BYTES:
        raise PlanError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZER_BYTES)}")
    tokens = batch * sequence
    per_token, formula = activation_bytes_per_token(arch, activations, checkpointing, values_per_layer)
    adapters: LoraAdapters | None = None
    if mode == "full":
        if weights.value_bits < 16:
            raise PlanError(
                f"full fine-tuning updates every weight, which {weights.name} cannot hold;"
                " use fp32, bf16 or fp16 weights, or --train qlora"
            )
        base, trainable = weights, params.total
        gradient_bytes = weights.bytes_per_value  # gradients take the weights' format
        # mixed precision keeps an FP32 copy to apply small updates to 16-bit weights
        master = 0.0 if weights.value_bits >= 32 else trainable * _FP32.bytes_per_value
        adapter_bytes = 0.0
    else:
        base = weights
        if mode == "qlora" and weights.value_bits > 4:
            base = parse_precision("nf4-dq")  # QLoRA's recipe: NF4 with double quantization
        adapters = lora_adapters(arch, lora_rank, lora_targets)
        trainable = adapters.trainable_params
        gradient_bytes = _FP32.bytes_per_value
        master = 0.0
        adapter_bytes = trainable * _FP32.bytes_per_value
        per_token += adapters.activation_values_per_token * activations.bytes_per_value
        formula += f" + {adapters.activation_values_per_token} LoRA values (rank × adapted matrices)"
    passes = _PASSES[mode] + (1 if checkpointing else 0)  # checkpointing runs the forward twice
    return TrainingMemory(
        mode=mode,
        optimizer=optimizer,
        checkpointing=checkpointing,
        base_precision=base.name,
        total_params=params.total,
        trainable_params=trainable,
        lora=adapters,
        tokens=tokens,
        weights=weight_bytes(params, base),
        adapters=adapter_bytes,
        master_weights=master,
        gradients=trainable * gradient_bytes,
        optimizer_states=trainable * OPTIMIZER_BYTES[optimizer],
        activations=tokens * per_token,
        activation_bytes_per_token=per_token,
        activation_formula=formula,
        flops_per_token=passes * forward_flops_per_token,
        device_memory=device_memory,
    )
