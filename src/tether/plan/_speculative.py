"""Speculative decoding (Leviathan et al. 2023): a draft model proposes γ tokens, the target checks them in
one pass. With each draft token accepted with probability α, a verification yields on average

    E[tokens] = (1 − α^(γ+1)) / (1 − α)

tokens, and costs one target step plus γ draft steps of relative cost c each, so decoding speeds up by

    E[tokens] / (γ·c + 1).

The target's verification pass over γ+1 tokens is taken to cost one decode step: decoding is
bandwidth-bound, so a few more tokens per weight read are nearly free.
"""

from __future__ import annotations

from pydantic import Field

from tether.plan._errors import PlanError
from tether.plan._record import Record


class SpeculativeEstimate(Record):
    acceptance_rate: float = Field(ge=0, le=1)
    draft_tokens: int = Field(ge=1)
    draft_cost: float = Field(ge=0)  # one draft step's time over one target step's
    draft_cost_source: str
    expected_tokens_per_verification: float
    speedup: float
    best_draft_tokens: int  # the γ that maximises the speed-up for this α and c
    best_speedup: float


def expected_tokens_per_verification(acceptance_rate: float, draft_tokens: int) -> float:
    alpha, gamma = acceptance_rate, draft_tokens
    if alpha >= 1.0:
        return float(gamma + 1)  # the limit of the geometric sum: every draft token kept, plus the bonus one
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def speculative_speedup(acceptance_rate: float, draft_tokens: int, draft_cost: float) -> float:
    return expected_tokens_per_verification(acceptance_rate, draft_tokens) / (draft_tokens * draft_cost + 1.0)


def speculative_estimate(
    acceptance_rate: float, draft_tokens: int, draft_cost: float, draft_cost_source: str = "given", max_draft: int = 16
) -> SpeculativeEstimate:
    if not 0.0 <= acceptance_rate <= 1.0:
        raise PlanError(f"the acceptance rate is a probability in [0, 1], got {acceptance_rate}")
    if draft_tokens < 1:
        raise PlanError(f"the draft proposes at least one token per verification, got {draft_tokens}")
    if draft_cost < 0:
        raise PlanError(f"the draft's relative cost cannot be negative, got {draft_cost}")
    best = max(range(1, max_draft + 1), key=lambda g: speculative_speedup(acceptance_rate, g, draft_cost))
    return SpeculativeEstimate(
        acceptance_rate=acceptance_rate,
        draft_tokens=draft_tokens,
        draft_cost=draft_cost,
        draft_cost_source=draft_cost_source,
        expected_tokens_per_verification=expected_tokens_per_verification(acceptance_rate, draft_tokens),
        speedup=speculative_speedup(acceptance_rate, draft_tokens, draft_cost),
        best_draft_tokens=best,
        best_speedup=speculative_speedup(acceptance_rate, best, draft_cost),
    )
