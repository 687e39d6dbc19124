"""LoRA itself: an adapter at initialisation (B = 0) changes nothing, merging and unmerging round-trip, and
``all-linear`` adapts the matrices the capacity planner counts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from tether.plan import architecture_from_config, lora_adapters  # noqa: E402
from tether.tune.models import ModelSource, build_model, byte_tokenizer, quiet_third_party  # noqa: E402

from .training import TINY_LLAMA, chat_ids, scratch_dir, write_config  # noqa: E402


@pytest.fixture(scope="module")
def base() -> tuple[Any, Any]:
    tokenizer = byte_tokenizer()
    config = write_config(scratch_dir("lora"))
    model, _ = build_model(ModelSource(kind="config", path=str(config)), tokenizer)
    return model.eval(), tokenizer


def _adapt(model: Any, rank: int = 8) -> Any:
    config = peft.LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear")
    with quiet_third_party():
        return peft.get_peft_model(copy.deepcopy(model), config).eval()


def _logits(model: Any, batch: dict[str, Any]) -> Any:
    with torch.no_grad():
        return model(**batch).logits


def test_a_fresh_adapter_leaves_the_output_unchanged(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    batch = chat_ids(tokenizer, "d b a c", "q w e r t y")
    adapted = _adapt(model)
    b_matrices = [p for n, p in adapted.named_parameters() if "lora_B" in n]
    assert b_matrices and all(bool((b == 0).all()) for b in b_matrices)
    assert any(bool((p != 0).any()) for n, p in adapted.named_parameters() if "lora_A" in n)
    assert torch.equal(_logits(adapted, batch), _logits(model, batch))


def test_merge_and_unmerge_round_trip(base: tuple[Any, Any]) -> None:
    model, tokenizer = base
    batch = chat_ids(tokenizer, "d b a c", "z y x")
    adapted = _adapt(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    before = {n: p.detach().clone() for n, p in adapted.named_parameters() if "base_layer" in n}
    with_adapter = _logits(adapted, batch)
    assert not torch.allclose(with_adapter, _logits(model, batch), atol=1e-3)  # the adapter does something

    adapted.merge_adapter()
    merged = _logits(adapted, batch)
    changed = {n for n, p in adapted.named_parameters() if "base_layer" in n and not torch.equal(p, before[n])}
    assert changed == {n for n in before if n.endswith("weight")}  # every adapted weight took its update
    torch.testing.assert_close(merged, with_adapter, atol=1e-5, rtol=1e-5)

    adapted.unmerge_adapter()
    for name, parameter in adapted.named_parameters():
        if name in before:
            torch.testing.assert_close(parameter, before[name], atol=1e-6, rtol=0)
    torch.testing.assert_close(_logits(adapted, batch), with_adapter, atol=1e-5, rtol=1e-5)


def test_all_linear_adapts_what_the_planner_counts(base: tuple[Any, Any]) -> None:
    model, _ = base
    adapted = _adapt(model, rank=8)
    trainable = sum(p.numel() for p in adapted.parameters() if p.requires_grad)
    planned = lora_adapters(architecture_from_config(TINY_LLAMA), rank=8, targets="all-linear")
    assert trainable == planned.trainable_params
    adapted_modules = {n.rsplit(".", 1)[-1] for n, m in adapted.named_modules() if hasattr(m, "lora_A")}
    assert adapted_modules == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
