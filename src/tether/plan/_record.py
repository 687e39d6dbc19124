"""The base of the planner's typed records: frozen, and serialised with their derived figures too."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Record(BaseModel):
    """A frozen pydantic model whose JSON also carries the properties named in ``derived``
    (totals, fits, tokens per second), so scripts reading ``--json`` need not recompute them."""

    model_config = ConfigDict(frozen=True)

    derived: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _with_derived(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self.derived:
            data[name] = getattr(self, name)
        return data
