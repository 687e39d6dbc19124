"""One answer to "will it fit, how fast, what does it cost": every section of the plan in one record."""

from __future__ import annotations

from pydantic import Field

from tether.plan._arch import Architecture
from tether.plan._devices import Device
from tether.plan._flops import FlopCount, decode_flops, prefill_flops
from tether.plan._kv import KvCache, kv_cache
from tether.plan._memory import FitLimits, InferenceMemory, fit_limits, inference_memory, largest
from tether.plan._params import ParameterCount, count_parameters
from tether.plan._record import Record
from tether.plan._roofline import Efficiency, SpeedEstimate, estimate_speed
from tether.plan._speculative import SpeculativeEstimate, speculative_estimate
from tether.plan._training import VALUES_PER_LAYER, OptimizerName, TrainingMemory, TrainMode, training_memory
from tether.plan._weights import weight_bytes_by_precision
from tether.plan._workload import Workload


class TrainingRequest(Record):
    mode: TrainMode
    optimizer: OptimizerName = "adam"
    checkpointing: bool = False
    lora_rank: int = Field(default=16, ge=1)
    lora_targets: str = "all-linear"
    # activations kept per layer per token, in units of d_model (12: the textbook floor)
    activation_values: float = Field(default=VALUES_PER_LAYER, gt=0)


class SpeculativeRequest(Record):
    acceptance_rate: float = Field(default=0.8, ge=0, le=1)
    draft_tokens: int = Field(default=4, ge=1)
    # one draft step's time over one target step's; None: from the draft model's roofline, else 0.05
    draft_cost: float | None = Field(default=None, ge=0)
    draft: Architecture | None = None


class ModelSummary(Record):
    name: str
    source: str  # "preset" or the config file's path
    description: str = ""
    published_params: float | None = None
    published_active_params: float | None = None


class Plan(Record):
    model: ModelSummary
    architecture: Architecture
    workload: Workload
    device: Device
    efficiency: Efficiency
    parameters: ParameterCount
    prefill_flops: FlopCount  # per prompt token, averaged over the prefill
    decode_flops: FlopCount  # per generated token, averaged over the generation
    kv_cache: KvCache
    weights_by_precision: dict[str, float]
    memory: InferenceMemory
    limits: FitLimits
    speed: SpeedEstimate
    speculative: SpeculativeEstimate | None = None
    training: TrainingMemory | None = None
    training_max_batch: int | None = None  # at this sequence length; None: memory never runs out


_DEFAULT_DRAFT_COST = 0.05  # a draft some 20x cheaper than the target, as in Leviathan et al.


def _speculative(
    request: SpeculativeRequest, target_step: float, workload: Workload, device: Device, efficiency: Efficiency
) -> SpeculativeEstimate:
    if request.draft_cost is not None:
        cost, source = request.draft_cost, "given"
    elif request.draft is not None:
        draft_step = estimate_speed(request.draft, count_parameters(request.draft), workload, device, efficiency)
        cost = draft_step.decode_step.seconds / target_step
        source = f"roofline of {request.draft.name} against the target"
    else:
        cost, source = _DEFAULT_DRAFT_COST, "assumed (give --draft-cost or --draft-preset)"
    return speculative_estimate(request.acceptance_rate, request.draft_tokens, cost, source)


def _training(
    request: TrainingRequest, arch: Architecture, params: ParameterCount, workload: Workload, device: Device
) -> tuple[TrainingMemory, int | None]:
    forward = prefill_flops(arch, workload.context).total - prefill_flops(arch, workload.context).lm_head
    forward += 2.0 * arch.hidden_size * arch.vocab_size  # training needs every position's logits

    def at_batch(batch: int) -> TrainingMemory:
        return training_memory(
            arch,
            params,
            mode=request.mode,
            weights=workload.weights,
            activations=workload.activations,
            batch=batch,
            sequence=workload.context,
            device_memory=device.memory_bytes - workload.overhead_bytes,
            optimizer=request.optimizer,
            checkpointing=request.checkpointing,
            lora_rank=request.lora_rank,
            lora_targets=request.lora_targets,
            forward_flops_per_token=forward,
            values_per_layer=request.activation_values,
        )

    return at_batch(workload.batch), largest(lambda b: at_batch(b).fits, high=2**24)


def make_plan(
    arch: Architecture,
    workload: Workload,
    device: Device,
    *,
    model: ModelSummary | None = None,
    efficiency: Efficiency | None = None,
    training: TrainingRequest | None = None,
    speculative: SpeculativeRequest | None = None,
) -> Plan:
    efficiency = efficiency or Efficiency()
    params = count_parameters(arch)
    draft = speculative.draft if speculative else None
    speed = estimate_speed(arch, params, workload, device, efficiency)
    trained, trained_max = _training(training, arch, params, workload, device) if training else (None, None)
    return Plan(
        model=model or ModelSummary(name=arch.name, source="config"),
        architecture=arch,
        workload=workload,
        device=device,
        efficiency=efficiency,
        parameters=params,
        prefill_flops=prefill_flops(arch, workload.prompt_tokens),
        decode_flops=decode_flops(arch, workload.prompt_tokens, workload.generated_tokens),
        kv_cache=kv_cache(arch, workload.kv_cache, workload.batch, workload.context),
        weights_by_precision=weight_bytes_by_precision(
            params, workload.weights.block_size, workload.weights.second_block_size
        ),
        memory=inference_memory(arch, params, workload, device, draft),
        limits=fit_limits(arch, params, workload, device, draft),
        speed=speed,
        speculative=(
            _speculative(speculative, speed.decode_step.seconds, workload, device, efficiency) if speculative else None
        ),
        training=trained,
        training_max_batch=trained_max,
    )
