"""The acceptance run of ``tether tune`` on a GPU (H100/H200 class); skipped without CUDA and bitsandbytes.

SFT, merge, then QLoRA DPO on generated pairs (scripts/tune_gpu_validation.py, half its steps): held-out
preference accuracy must rise from about 50% to at least 90%, and the measured peak GPU memory of the QLoRA
run must be within 15% of the capacity planner's prediction for the same configuration.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from .test_train_cpu import load_validation_script  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(
        importlib.util.find_spec("bitsandbytes") is None, reason="needs bitsandbytes (tether[tune-gpu])"
    ),
]


def test_qlora_dpo_learns_the_rule_and_fits_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = Path(os.environ.get("TETHER_TUNE_VALIDATION_OUT", tmp_path))
    result = load_validation_script(monkeypatch).main(["--device", "cuda", "--short", "--out", str(out)])
    assert result["qlora"] is True
    assert 0.3 <= result["preference_accuracy_before"] <= 0.7, result["preference_accuracy_before"]
    assert result["preference_accuracy_after"] >= 0.9, result["preference_accuracy_after"]
    assert abs(result["memory_error_percent"]) <= 15, (
        f"planner {result['planner']['total_bytes']:,.0f} B vs measured {result['peak_memory_bytes']:,} B"
    )
