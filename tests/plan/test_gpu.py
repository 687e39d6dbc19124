"""The planner against the CUDA allocator (torch.cuda.max_memory_allocated); skipped without a GPU."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tether.plan._validate import GPU_CASES, ValidationCase, measure_gpu  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("case", GPU_CASES, ids=lambda case: case.name)
def test_weights_and_cache_on_the_gpu(case: ValidationCase) -> None:
    rows = measure_gpu(case)
    assert {r.device for r in rows} == {"cuda"}
    for r in rows:
        assert abs(r.error_percent) <= 10, (
            f"{r.model}: {r.quantity} predicted {r.predicted:,.0f}, measured {r.measured:,.0f}"
        )
