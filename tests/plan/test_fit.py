from __future__ import annotations

from tether.plan import (
    Workload,
    count_parameters,
    custom_device,
    device_preset,
    fit_limits,
    inference_memory,
    parse_precision,
    preset_architecture,
)
from tether.plan._memory import largest
from tether.plan._units import GIB


def test_largest_finds_the_boundary() -> None:
    assert largest(lambda n: n <= 37) == 37
    assert largest(lambda n: False) == 0
    assert largest(lambda n: True, high=100) is None
    assert largest(lambda n: n <= 10, low=5) == 10


def test_memory_adds_up_and_the_limits_sit_on_the_edge() -> None:
    arch, device = preset_architecture("llama-2-7b"), device_preset("a100-40g")
    params = count_parameters(arch)
    work = Workload(batch=8, prompt_tokens=3840, generated_tokens=256, kv_cache=parse_precision("fp16"))
    memory = inference_memory(arch, params, work, device)
    assert memory.total == memory.weights + memory.kv_cache + memory.activations + memory.overhead
    limits = fit_limits(arch, params, work, device)
    assert inference_memory(arch, params, work.model_copy(update={"batch": limits.max_batch}), device).fits
    assert not inference_memory(arch, params, work.model_copy(update={"batch": limits.max_batch + 1}), device).fits
    assert limits.max_context is not None
    assert inference_memory(arch, params, work.with_context(limits.max_context), device).fits
    assert not inference_memory(arch, params, work.with_context(limits.max_context + 1), device).fits
    assert limits.model_max_context == 4096


def test_a_model_too_big_for_the_device() -> None:
    arch = preset_architecture("llama-2-70b")
    params = count_parameters(arch)
    work = Workload()
    memory = inference_memory(arch, params, work, device_preset("a100-80g"))
    assert not memory.fits
    assert memory.headroom < 0
    limits = fit_limits(arch, params, work, device_preset("a100-80g"))
    assert limits.max_batch == 0
    assert limits.max_context == 0
    four_bit = work.model_copy(update={"weights": parse_precision("nf4-dq")})
    assert inference_memory(arch, params, four_bit, device_preset("a100-80g")).fits


def test_sliding_window_with_chunked_prefill_never_runs_out_of_context() -> None:
    arch = preset_architecture("mistral-7b")
    work = Workload(prefill_chunk=2048)
    assert fit_limits(arch, count_parameters(arch), work, device_preset("h100")).max_context is None


def test_custom_device_overrides() -> None:
    h100 = device_preset("h100")
    small = custom_device(h100, memory_gib=10, tflops=100, bandwidth_gbs=500)
    assert small.memory_bytes == 10 * GIB
    assert small.bandwidth == 500e9
    assert small.peak_flops["16bit"] == 100e12
    assert small.peak_flops["fp8"] == h100.peak_flops["fp8"] * 100e12 / h100.peak_flops["16bit"]
    assert custom_device(h100) is h100
