"""Learning from people: preference data from the threads Tether stores, and training on it.

Importing ``tether.tune`` is light: every name below is imported on first use, from the
module named next to it. The data half (finding decisions, feedback, export, hygiene) needs
no torch; training needs the ``tune`` extra (``pip install 'tether[tune]'``).

To export a name: add one line ``"Name": "module",`` to ``_EXPORTS`` and the name to ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.tune.decisions import Decision as Decision
    from tether.tune.decisions import find_decisions as find_decisions
    from tether.tune.export import ExportResult as ExportResult
    from tether.tune.export import export_preferences as export_preferences
    from tether.tune.feedback import Feedback as Feedback
    from tether.tune.feedback import list_feedback as list_feedback
    from tether.tune.feedback import record_feedback as record_feedback
    from tether.tune.hygiene import HygieneReport as HygieneReport
    from tether.tune.hygiene import clean as clean
    from tether.tune.losses import dpo_loss as dpo_loss
    from tether.tune.losses import reward_model_loss as reward_model_loss
    from tether.tune.merge import merge_adapter as merge_adapter
    from tether.tune.train import TrainSettings as TrainSettings

# public name -> module of tether.tune that defines it (one line each; keep sorted within a block)
_EXPORTS: dict[str, str] = {
    # data: decisions people made in threads, explicit feedback, export, hygiene
    "Decision": "decisions",
    "ExportResult": "export",
    "Feedback": "feedback",
    "HygieneReport": "hygiene",
    "clean": "hygiene",
    "export_preferences": "export",
    "find_decisions": "decisions",
    "list_feedback": "feedback",
    "record_feedback": "feedback",
    # training (torch, transformers, trl and peft load with these; run one with tether.tune.train.train)
    "TrainSettings": "train",
    "dpo_loss": "losses",
    "merge_adapter": "merge",
    "reward_model_loss": "losses",
}

__all__ = [
    "Decision",
    "ExportResult",
    "Feedback",
    "HygieneReport",
    "TrainSettings",
    "clean",
    "dpo_loss",
    "export_preferences",
    "find_decisions",
    "list_feedback",
    "merge_adapter",
    "record_feedback",
    "reward_model_loss",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tether.tune.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
