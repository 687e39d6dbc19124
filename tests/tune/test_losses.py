"""tether.tune.losses against TRL's own trainers, on the same tensors.

TRL 1.16 computes both losses inside trainer methods (``DPOTrainer._compute_loss``, ``RewardTrainer.compute_loss``),
so the tests call those methods with a stand-in trainer and a stand-in model that returns the given tensors.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from tether.tune.losses import dpo_loss, reward_model_loss  # noqa: E402


def _accelerator() -> Any:
    same = lambda tensor: tensor  # noqa: E731  (one process: gathering returns the tensor)
    return SimpleNamespace(device=torch.device("cpu"), gather=same, gather_for_metrics=same)


def _trl_dpo(policy_tokens: Any, mask: Any, ref_chosen: Any, ref_rejected: Any, beta: float) -> tuple[Any, Any]:
    """TRL's sigmoid DPO loss and its logged metrics for per-token policy log-probs (batch = [chosen; rejected])."""
    rows, width = policy_tokens.shape
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=_accelerator(),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=["sigmoid"],
        loss_weights=[1.0],
        beta=beta,
        use_weighting=False,
        label_smoothing=0.0,
        args=SimpleNamespace(),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    outputs = SimpleNamespace(
        log_probs=policy_tokens,
        entropy=torch.zeros(rows, width),
        mean_logits=torch.zeros(rows, width),
        is_top1=torch.zeros(rows, width, dtype=torch.bool),
    )
    inputs = {
        "input_ids": torch.ones(rows, width + 1, dtype=torch.long),
        "attention_mask": torch.ones(rows, width + 1, dtype=torch.long),
        "completion_mask": torch.cat([torch.zeros(rows, 1, dtype=torch.long), mask], dim=1),
        "ref_chosen_logps": ref_chosen,
        "ref_rejected_logps": ref_rejected,
    }
    loss = trl.DPOTrainer._compute_loss(trainer, lambda **_: outputs, inputs, return_outputs=False)
    return loss, trainer._metrics["train"]


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_dpo_loss_equals_trl(beta: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    pairs, width = 8, 12
    mask = (torch.rand(2 * pairs, width, generator=generator) > 0.3).long()
    policy_tokens = -torch.rand(2 * pairs, width, generator=generator) * 3 * mask  # masked positions add nothing
    ref_chosen = -torch.rand(pairs, generator=generator) * 20
    ref_rejected = -torch.rand(pairs, generator=generator) * 20

    expected, metrics = _trl_dpo(policy_tokens, mask, ref_chosen, ref_rejected, beta)
    chosen, rejected = policy_tokens.sum(dim=1).chunk(2)
    ours = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=beta)

    assert abs(float(ours.loss) - float(expected)) <= 1e-6
    assert float(ours.margins.mean()) == pytest.approx(metrics["rewards/margins"][0], abs=1e-6)
    assert float(ours.accuracy) == pytest.approx(metrics["rewards/accuracies"][0], abs=1e-6)
    assert float(ours.chosen_rewards.mean()) == pytest.approx(metrics["rewards/chosen"][0], abs=1e-6)


def test_dpo_loss_is_log_2_when_the_policy_is_the_reference() -> None:
    logps = torch.tensor([-3.0, -7.5])
    result = dpo_loss(logps, logps - 1, logps, logps - 1, beta=0.3)
    assert float(result.loss) == pytest.approx(math.log(2), abs=1e-7)
    assert float(result.accuracy) == 0.0  # a tie is not a win


def _trl_reward(chosen: Any, rejected: Any, margin: Any | None) -> Any:
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=False),
        accelerator=_accelerator(),
        args=SimpleNamespace(center_rewards_coefficient=None),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    scores = SimpleNamespace(logits=torch.cat([chosen, rejected])[:, None])
    inputs: dict[str, Any] = {"input_ids": torch.ones(2 * len(chosen), 5, dtype=torch.long)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if margin is not None:
        inputs["margin"] = margin
    return trl.RewardTrainer.compute_loss(trainer, lambda **_: scores, inputs)


@pytest.mark.parametrize("with_margin", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reward_model_loss_equals_trl(with_margin: bool, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    chosen, rejected = torch.randn(16, generator=generator) * 3, torch.randn(16, generator=generator) * 3
    margin = torch.rand(16, generator=generator) if with_margin else None
    expected = _trl_reward(chosen, rejected, margin)
    assert abs(float(reward_model_loss(chosen, rejected, margin)) - float(expected)) <= 1e-6


def test_losses_carry_gradients() -> None:
    chosen = torch.tensor([-2.0, -1.0], requires_grad=True)
    dpo_loss(chosen, torch.tensor([-2.0, -3.0]), torch.tensor([-2.5, -1.0]), torch.tensor([-2.0, -2.0])).loss.backward()
    assert chosen.grad is not None and bool((chosen.grad < 0).all())  # raising a chosen log-prob lowers the loss
