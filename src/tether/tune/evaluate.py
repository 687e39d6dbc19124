"""Held-out measurements of a policy: which completion of a pair it prefers, and how far it has moved from
its reference.

Preference accuracy is the fraction of pairs whose chosen completion the model finds more likely than the
rejected one, log π(chosen | x) > log π(rejected | x) (a tie counts one half). A model that has not learnt
the rule scores about 50%.

KL to the reference is measured along the held-out completions (teacher-forced), over the whole vocabulary
at every completion position, summed over the positions of a sequence and averaged over sequences:

    KL = mean over x  Σ_t  Σ_v  π(v | x, y<t) · (log π(v | x, y<t) − log π_ref(v | x, y<t))

The reference is the same model with its LoRA adapter switched off, so no second copy is kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from transformers import PreTrainedTokenizerBase

__all__ = [
    "Encoded",
    "encode",
    "kl_to_reference",
    "preference_accuracy",
    "reference_mode",
    "sequence_logps",
]

Messages = list[dict[str, str]]


@dataclass(frozen=True, kw_only=True)
class Encoded:
    """Token ids of prompt + completion, and where the completion starts."""

    ids: list[int]
    completion_start: int


def _render(tokenizer: PreTrainedTokenizerBase, messages: Messages, generation_prompt: bool) -> list[int]:
    encoded: Any = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=True
    )
    return list(encoded["input_ids"])


def encode(tokenizer: PreTrainedTokenizerBase, prompt: Messages, completion: Messages) -> Encoded:
    """Render with the chat template; the completion starts where the prompt alone and the whole diverge."""
    head = _render(tokenizer, prompt, generation_prompt=True)
    whole = _render(tokenizer, prompt + completion, generation_prompt=False)
    start = 0
    while start < min(len(head), len(whole)) and head[start] == whole[start]:
        start += 1
    return Encoded(ids=whole, completion_start=max(1, min(start, len(whole) - 1)))


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _batches(items: Sequence[Encoded], size: int) -> Iterator[Sequence[Encoded]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _pad(batch: Sequence[Encoded], pad_id: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Right-padded ids, attention mask, and a mask over the positions t whose token t+1 is a completion token."""
    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    scored = torch.zeros((len(batch), width - 1), dtype=torch.bool)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        attention[row, : len(e.ids)] = 1
        scored[row, e.completion_start - 1 : len(e.ids) - 1] = True
    return ids.to(device), attention.to(device), scored.to(device)


def _log_probs(model: torch.nn.Module, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """Next-token log-probabilities at every position but the last: (batch, length − 1, vocab), in FP32."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    return F.log_softmax(logits.float(), dim=-1)


@torch.no_grad()
def sequence_logps(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, items: Sequence[Encoded], batch_size: int = 16
) -> torch.Tensor:
    """Summed log-probability of each completion given its prompt (on the CPU, one value per item)."""
    pad_id = int(tokenizer.pad_token_id or 0)
    out: list[torch.Tensor] = []
    for batch in _batches(items, batch_size):
        ids, attention, scored = _pad(batch, pad_id, _device(model))
        token_logps = _log_probs(model, ids, attention).gather(-1, ids[:, 1:, None]).squeeze(-1)
        out.append((token_logps * scored).sum(dim=1).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def preference_accuracy(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[tuple[Encoded, Encoded]],
    batch_size: int = 16,
) -> float:
    """The fraction of (chosen, rejected) pairs where the model finds the chosen completion more likely."""
    if not pairs:
        return float("nan")
    chosen = sequence_logps(model, tokenizer, [c for c, _ in pairs], batch_size)
    rejected = sequence_logps(model, tokenizer, [r for _, r in pairs], batch_size)
    wins = (chosen > rejected).float() + 0.5 * (chosen == rejected).float()
    return float(wins.mean())


@contextlib.contextmanager
def reference_mode(model: Any) -> Iterator[None]:
    """The reference policy: the adapter switched off (a PEFT model), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with model.disable_adapter():
            yield
    finally:
        model.train(was_training)


@torch.no_grad()
def kl_to_reference(
    model: Any, tokenizer: PreTrainedTokenizerBase, items: Sequence[Encoded], batch_size: int = 16
) -> float:
    """Mean over sequences of the summed per-position KL(π ‖ π_ref) along the completions; 0 before training."""
    if not items:
        return float("nan")
    pad_id = int(tokenizer.pad_token_id or 0)
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        for batch in _batches(items, batch_size):
            ids, attention, scored = _pad(batch, pad_id, _device(model))
            policy = _log_probs(model, ids, attention)
            with reference_mode(model):
                reference = _log_probs(model, ids, attention)
            per_position = (policy.exp() * (policy - reference)).sum(-1)
            total += float((per_position * scored).sum())
    finally:
        model.train(was_training)
    return total / len(items)
