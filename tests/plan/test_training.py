from __future__ import annotations

import pytest

from tether.plan import (
    ParameterCount,
    PlanError,
    TrainingMemory,
    activation_bytes_per_token,
    count_parameters,
    lora_adapters,
    parse_precision,
    preset_architecture,
    training_memory,
)
from tether.plan._units import GIB, MIB

from ._shapes import tiny_gpt2, tiny_llama

FP32, BF16 = parse_precision("fp32"), parse_precision("bf16")


def seventy_billion() -> ParameterCount:
    return ParameterCount(
        embeddings=0,
        attention_q=0,
        attention_k=0,
        attention_v=0,
        attention_kv_latent=0,
        attention_o=0,
        mlp=70_000_000_000,
        experts=0,
        router=0,
        norms=0,
        lm_head=0,
        active_experts=0,
        quantizable=70_000_000_000,
    )


def test_70b_in_fp32_weights_gradients_and_adam() -> None:
    plan = training_memory(
        preset_architecture("llama-2-70b"),
        seventy_billion(),
        mode="full",
        weights=FP32,
        activations=FP32,
        batch=1,
        sequence=1,
        device_memory=80 * GIB,
    )
    assert (plan.weights + plan.gradients) / GIB == pytest.approx(521.5, abs=0.05)
    assert plan.optimizer_states / GIB == pytest.approx(521.5, abs=0.05)
    assert plan.master_weights == 0
    assert not plan.fits


def test_mixed_precision_is_16_bytes_a_parameter() -> None:
    params = seventy_billion()
    plan = training_memory(
        preset_architecture("llama-2-70b"),
        params,
        mode="full",
        weights=BF16,
        activations=BF16,
        batch=1,
        sequence=1,
        device_memory=80 * GIB,
    )
    assert plan.weights + plan.gradients + plan.master_weights + plan.optimizer_states == 16 * params.total


def test_activations_by_the_12_values_estimate() -> None:
    arch = preset_architecture("llama-2-70b")  # d_model 8192, 80 layers
    per_token, formula = activation_bytes_per_token(arch, FP32, checkpointing=False)
    assert per_token == 12 * 8192 * 80 * 4 == 30 * MIB  # about 31 MB: "on the order of 30 MB"
    assert formula == "12 × d_model × layers × bytes = 12 × 8192 × 80 × 4 B"
    checkpointed, formula = activation_bytes_per_token(arch, FP32, checkpointing=True)
    assert checkpointed == (80 + 12) * 8192 * 4
    assert formula.startswith("(layers + 12)")


def test_activations_scale_with_batch_and_sequence() -> None:
    arch = tiny_llama()
    params = count_parameters(arch)
    plan = training_memory(
        arch, params, mode="full", weights=BF16, activations=BF16, batch=3, sequence=10, device_memory=GIB
    )
    assert plan.tokens == 30
    assert plan.activations == 30 * 12 * 16 * 2 * 2


def test_lora_parameters_by_hand() -> None:
    arch = tiny_llama()  # d 16, q out 16, k/v out 8, SwiGLU 40, 2 layers
    adapters = lora_adapters(arch, rank=4, targets="q,v")
    assert adapters.params_by_module == {"q": 2 * 4 * (16 + 16), "v": 2 * 4 * (16 + 8)}
    every = lora_adapters(arch, rank=4)
    assert every.targets == ("q", "k", "v", "o", "gate", "up", "down")
    per_layer = 4 * ((16 + 16) + 2 * (16 + 8) + (16 + 16) + 2 * (16 + 40) + (40 + 16))
    assert every.trainable_params == 2 * per_layer
    assert lora_adapters(arch, 4, "mlp").targets == ("gate", "up", "down")


def test_lora_on_fused_qkv_and_experts() -> None:
    assert lora_adapters(tiny_gpt2(), 2, "qkv").trainable_params == 2 * 2 * (16 + 48)
    mixtral = preset_architecture("mixtral-8x7b")
    experts = lora_adapters(mixtral, 1, "down")  # one adapter per expert
    assert experts.trainable_params == 32 * 8 * (14336 + 4096)


def test_unknown_lora_target_names_the_choices() -> None:
    with pytest.raises(PlanError, match=r"no module 'q_proj'.*q, k, v, o, gate, up, down"):
        lora_adapters(tiny_llama(), 8, "q_proj")
    with pytest.raises(PlanError, match="rank"):
        lora_adapters(tiny_llama(), 0)


def test_lora_trains_only_the_adapters() -> None:
    arch = preset_architecture("llama-2-7b")
    params = count_parameters(arch)
    plan = training_memory(
        arch,
        params,
        mode="lora",
        weights=BF16,
        activations=BF16,
        batch=1,
        sequence=512,
        device_memory=24 * GIB,
        lora_rank=16,
        lora_targets="q,v",
    )
    assert plan.trainable_params == 32 * 16 * ((4096 + 4096) * 2)  # 8.4 M, as PEFT reports for Llama-2-7B
    assert plan.weights == 2 * params.total
    assert plan.gradients == 4 * plan.trainable_params
    assert plan.optimizer_states == 8 * plan.trainable_params
    assert plan.master_weights == 0


def test_qlora_stores_the_base_in_nf4_with_double_quantization() -> None:
    arch = preset_architecture("llama-2-70b")
    params = count_parameters(arch)

    def qlora_with(weights: str) -> TrainingMemory:
        return training_memory(
            arch,
            params,
            mode="qlora",
            weights=parse_precision(weights),
            activations=BF16,
            batch=1,
            sequence=512,
            device_memory=48 * GIB,
        )

    qlora = qlora_with("bf16")
    assert qlora.base_precision == "nf4-dq"
    assert qlora.weights / GIB == pytest.approx(33.9, abs=0.1)
    assert qlora.fits
    nf4 = qlora_with("nf4")
    assert nf4.base_precision == "nf4"
    assert nf4.weights > qlora.weights


def test_full_fine_tuning_needs_float_weights() -> None:
    arch = tiny_llama()
    with pytest.raises(PlanError, match="use fp32, bf16 or fp16 weights, or --train qlora"):
        training_memory(
            arch,
            count_parameters(arch),
            mode="full",
            weights=parse_precision("nf4"),
            activations=BF16,
            batch=1,
            sequence=1,
            device_memory=GIB,
        )


def test_8_bit_adam_is_about_2_bytes_a_parameter() -> None:
    arch = tiny_llama()
    params = count_parameters(arch)
    plan = training_memory(
        arch,
        params,
        mode="full",
        weights=BF16,
        activations=BF16,
        batch=1,
        sequence=1,
        device_memory=GIB,
        optimizer="adam8bit",
    )
    assert plan.optimizer_states == pytest.approx(2 * params.total * (1 + 4 / 2048))
