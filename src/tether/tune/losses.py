"""The two preference losses, in a few lines of torch.

DPO (Rafailov et al., 2023). With the policy's and the frozen reference's summed log-probabilities of the
chosen and rejected completions, the implicit rewards are r = β (log π(y|x) − log π_ref(y|x)) and

    L_DPO = −log σ(r_chosen − r_rejected),   averaged over pairs.

Bradley–Terry reward model. With scalar rewards for the chosen and rejected completions (and an optional
margin m a pair must be won by),

    L_BT = −log σ(r_chosen − r_rejected − m),   averaged over pairs.

``tests/tune/test_losses.py`` checks both against TRL's trainers on the same tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

__all__ = ["DpoLoss", "dpo_loss", "reward_model_loss"]


@dataclass(frozen=True, kw_only=True)
class DpoLoss:
    loss: torch.Tensor  # scalar, the mean over pairs
    chosen_rewards: torch.Tensor  # β · log-ratio of each chosen completion, detached
    rejected_rewards: torch.Tensor

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards

    @property
    def accuracy(self) -> torch.Tensor:
        """The fraction of pairs whose implicit reward ranks the chosen completion first."""
        return (self.chosen_rewards > self.rejected_rewards).float().mean()


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> DpoLoss:
    """The sigmoid DPO loss from summed sequence log-probabilities (one value per pair in each tensor)."""
    chosen = policy_chosen_logps - reference_chosen_logps
    rejected = policy_rejected_logps - reference_rejected_logps
    loss = -F.logsigmoid(beta * (chosen - rejected)).mean()
    return DpoLoss(loss=loss, chosen_rewards=beta * chosen.detach(), rejected_rewards=beta * rejected.detach())


def reward_model_loss(
    chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """The Bradley–Terry loss of a reward model's scalar scores for chosen and rejected completions."""
    difference = chosen_rewards - rejected_rewards
    if margin is not None:
        difference = difference - margin
    return -F.logsigmoid(difference).mean()
