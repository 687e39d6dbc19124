"""Errors of the training half of ``tether.tune``, under :class:`tether.errors.TetherError`.

    TetherError
    └── TrainingError                a training, merge or validation run cannot start or go on
        ├── TrainingSetupError       the inputs do not work: a model path, a data file, an option
        └── QloraUnavailableError    --qlora asked for on a machine without CUDA or bitsandbytes

No torch here: the CLI imports this module to report errors without loading the training stack.
"""

from __future__ import annotations

from tether.errors import TetherError

__all__ = ["QloraUnavailableError", "TrainingError", "TrainingSetupError"]


class TrainingError(TetherError):
    """A training, merge or validation run could not start or go on."""


class TrainingSetupError(TrainingError, ValueError):
    """A model path, data file or option the run cannot use; the message says which and what would do."""


class QloraUnavailableError(TrainingError, RuntimeError):
    """QLoRA needs a CUDA GPU and bitsandbytes; the message says which is missing."""
