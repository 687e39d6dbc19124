"""What a training run records at each evaluation step, the over-optimisation watch, and the plot.

:class:`EvalRecorder` is a ``transformers`` callback. At every evaluation (and once before the first step)
it writes one record to ``metrics.json``: the last training loss, the held-out loss, the reward margin and
reward accuracy the trainer measured (DPO's implicit rewards β·log π/π_ref, or the reward model's scores),
the held-out preference accuracy of the policy, and its KL to the reference (see ``tether.tune.evaluate``).
When the KL passes ``max_kl`` it stops the run: the policy is drifting from the reference faster than the
preferences justify, the usual sign of over-optimisation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from tether.tune.evaluate import Encoded, kl_to_reference, preference_accuracy

__all__ = ["EvalRecord", "EvalRecorder", "plot_metrics"]

# the trainers' names for the margin and accuracy of their held-out rewards, by kind of run
_MARGIN = {"dpo": "eval_rewards/margins", "reward": "eval_margin"}
_REWARD_ACCURACY = {"dpo": "eval_rewards/accuracies", "reward": "eval_accuracy"}


@dataclass(frozen=True, kw_only=True)
class EvalRecord:
    step: int
    epoch: float
    train_loss: float | None
    eval_loss: float | None
    reward_margin: float | None
    reward_accuracy: float | None
    preference_accuracy: float | None
    kl: float | None


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


@dataclass(kw_only=True)
class _Watch:
    max_kl: float | None
    stopped: dict[str, float] | None = None
    records: list[EvalRecord] = field(default_factory=list)


class EvalRecorder(TrainerCallback):
    """Records each evaluation to ``path`` (JSON) and stops training once held-out KL exceeds ``max_kl``."""

    def __init__(
        self,
        *,
        kind: str,
        tokenizer: PreTrainedTokenizerBase,
        path: Path,
        pairs: Sequence[tuple[Encoded, Encoded]] = (),
        completions: Sequence[Encoded] = (),
        max_kl: float | None = None,
        batch_size: int = 16,
    ) -> None:
        self.kind, self.tokenizer, self.path = kind, tokenizer, path
        self.pairs, self.completions, self.batch_size = list(pairs), list(completions), batch_size
        self.watch = _Watch(max_kl=max_kl)
        self._train_loss: float | None = None

    @property
    def records(self) -> list[EvalRecord]:
        return self.watch.records

    @property
    def stopped(self) -> dict[str, float] | None:
        return self.watch.stopped

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        logs = kwargs.get("logs") or {}
        if "loss" in logs:
            self._train_loss = float(logs["loss"])

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        metrics: dict[str, Any] = kwargs.get("metrics") or {}
        model = kwargs["model"]
        lm = self.kind != "reward"  # a reward model has no next-token distribution to compare
        kl = kl_to_reference(model, self.tokenizer, self.completions, self.batch_size) if lm else None
        accuracy = preference_accuracy(model, self.tokenizer, self.pairs, self.batch_size) if lm else None
        record = EvalRecord(
            step=state.global_step,
            epoch=float(state.epoch or 0.0),
            train_loss=self._train_loss,
            eval_loss=_number(metrics.get("eval_loss")),
            reward_margin=_number(metrics.get(_MARGIN.get(self.kind, ""))),
            reward_accuracy=_number(metrics.get(_REWARD_ACCURACY.get(self.kind, ""))),
            preference_accuracy=_number(accuracy) if self.pairs else None,
            kl=_number(kl),
        )
        self.watch.records.append(record)
        bound = self.watch.max_kl
        if bound is not None and record.kl is not None and record.kl > bound and self.watch.stopped is None:
            self.watch.stopped = {"step": record.step, "kl": record.kl, "max_kl": bound}
            control.should_training_stop = True
        self.write()

    def write(self) -> None:
        data = {
            "kind": self.kind,
            "max_kl": self.watch.max_kl,
            "stopped_early": self.watch.stopped,
            "evaluations": [asdict(r) for r in self.watch.records],
        }
        self.path.write_text(json.dumps(data, indent=2) + "\n")


def plot_metrics(records: Sequence[EvalRecord], path: Path, *, title: str = "", max_kl: float | None = None) -> Path:
    """Loss, reward margin, accuracies and KL against the training step, in four panels of one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.step for r in records]
    panels: list[tuple[str, dict[str, list[float | None]]]] = [
        ("loss", {"train": [r.train_loss for r in records], "held-out": [r.eval_loss for r in records]}),
        ("reward margin", {"held-out": [r.reward_margin for r in records]}),
        (
            "accuracy",
            {
                "preference (log π)": [r.preference_accuracy for r in records],
                "reward": [r.reward_accuracy for r in records],
            },
        ),
        ("KL to reference", {"held-out": [r.kl for r in records]}),
    ]
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for axis, (name, series) in zip(axes, panels):
        for label, values in series.items():
            points = [(s, v) for s, v in zip(steps, values) if v is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=label)
        if name == "KL to reference" and max_kl is not None:
            axis.axhline(max_kl, color="red", linestyle="--", label="bound")
        axis.set_title(name)
        axis.set_xlabel("step")
        if axis.lines:
            axis.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
