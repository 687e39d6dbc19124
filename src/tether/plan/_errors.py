"""The one error the planner raises: the inputs do not describe a model, workload or device it can plan for."""

from __future__ import annotations

from tether.errors import TetherError


class PlanError(TetherError, ValueError):
    """An input the planner cannot use; the message names what is wrong and what would be accepted."""
