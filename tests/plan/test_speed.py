from __future__ import annotations

import pytest

from tether.plan import (
    Efficiency,
    PlanError,
    Workload,
    count_parameters,
    device_preset,
    estimate_speed,
    expected_tokens_per_verification,
    parse_precision,
    preset_architecture,
    speculative_estimate,
    speculative_speedup,
    weight_bytes,
)
from tether.plan._roofline import expert_fraction_touched

H100 = device_preset("h100")


def test_decoding_one_sequence_is_bandwidth_bound() -> None:
    arch = preset_architecture("llama-2-7b")
    params = count_parameters(arch)
    work = Workload(batch=1, prompt_tokens=1, generated_tokens=1)
    step = estimate_speed(arch, params, work, H100).decode_step
    assert step.bound == "memory bandwidth"
    # the weights, less the token table (only one row of it is read), plus a 2-token cache
    read = weight_bytes(params, work.weights) - 2 * (arch.vocab_size - 1) * arch.hidden_size
    cache = 2 * 2 * 32 * 4096 * 2
    assert step.bytes_moved == pytest.approx(read + cache)
    assert step.tokens_per_second == pytest.approx(H100.bandwidth / (read + cache))
    assert 200 < step.tokens_per_second < 280  # 3.35 TB/s over ~13.5 GB


def test_long_prefill_is_compute_bound() -> None:
    arch = preset_architecture("llama-2-7b")
    speed = estimate_speed(arch, count_parameters(arch), Workload(batch=8, prompt_tokens=4096), H100)
    assert speed.prefill.bound == "compute"
    assert speed.prefill.seconds == pytest.approx(speed.prefill.flops / H100.peak_flops["16bit"])
    assert speed.prefill.arithmetic_intensity > speed.ridge_intensity


def test_efficiency_slows_the_estimate() -> None:
    arch = preset_architecture("llama-2-7b")
    params, work = count_parameters(arch), Workload()
    ideal = estimate_speed(arch, params, work, H100)
    real = estimate_speed(arch, params, work, H100, Efficiency(compute=0.5, bandwidth=0.8))
    assert real.prefill.compute_seconds == pytest.approx(2 * ideal.prefill.compute_seconds)
    assert real.decode_step.memory_seconds == pytest.approx(ideal.decode_step.memory_seconds / 0.8)


def test_quantized_weights_decode_faster() -> None:
    arch = preset_architecture("llama-2-7b")
    params = count_parameters(arch)
    bf16 = estimate_speed(arch, params, Workload(prompt_tokens=16), H100).decode_step
    nf4 = estimate_speed(arch, params, Workload(prompt_tokens=16, weights=parse_precision("nf4")), H100).decode_step
    assert 2.5 < bf16.seconds / nf4.seconds < 4


def test_moe_decoding_reads_only_the_routed_experts() -> None:
    arch = preset_architecture("mixtral-8x7b")
    assert expert_fraction_touched(arch, 1) == pytest.approx(2 / 8)
    assert expert_fraction_touched(arch, 2) == pytest.approx(1 - (6 / 8) ** 2)
    params = count_parameters(arch)
    step = estimate_speed(arch, params, Workload(prompt_tokens=1, generated_tokens=1), H100).decode_step
    assert step.bytes_moved < 0.3 * weight_bytes(params, parse_precision("bf16"))


def test_speculative_decoding_formula() -> None:
    assert expected_tokens_per_verification(0.8, 4) == pytest.approx((1 - 0.8**5) / 0.2)
    assert expected_tokens_per_verification(0.0, 4) == 1.0  # only the target's own token
    assert expected_tokens_per_verification(1.0, 4) == 5.0
    assert speculative_speedup(0.8, 4, 0.0) == pytest.approx(3.3616)
    assert speculative_speedup(0.8, 4, 0.05) == pytest.approx(3.3616 / 1.2)
    estimate = speculative_estimate(0.8, 4, 0.05)
    assert estimate.best_speedup >= estimate.speedup
    assert estimate.best_draft_tokens == max(range(1, 17), key=lambda g: speculative_speedup(0.8, g, 0.05))
    with pytest.raises(PlanError, match="probability"):
        speculative_estimate(1.5, 4, 0.1)
