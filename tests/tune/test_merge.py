"""``tether tune merge``: the adapter folded into the base gives the logits of base + adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from transformers import AutoModelForCausalLM  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from tether.cli import app  # noqa: E402
from tether.tune.merge import load_adapted, load_base, merge_adapter  # noqa: E402
from tether.tune.train import RECORD_FILE  # noqa: E402
from tether.tune.train_errors import TrainingSetupError  # noqa: E402

from .training import chat_ids, tiny_dpo_run  # noqa: E402


def test_merged_model_equals_base_plus_adapter(tmp_path: Path) -> None:
    run = tiny_dpo_run()
    adapted, tokenizer = load_adapted(run.out)
    merged_dir = merge_adapter(run.out, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    batch = chat_ids(tokenizer, "d b a c", "x c v", "p o i u")
    with torch.no_grad():
        expected, got = adapted(**batch).logits, merged(**batch).logits
        with adapted.disable_adapter():
            base = adapted(**batch).logits
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-5)
    assert (expected[mask] - base[mask]).abs().max() > 1e-2  # the adapter moved the logits, and merging kept that
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert (merged_dir / "tokenizer.json").exists()


def test_merge_from_the_command_line(tmp_path: Path) -> None:
    run = tiny_dpo_run()
    result = CliRunner().invoke(app, ["tune", "merge", str(run.out), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").exists() and (tmp_path / "m" / "tether_merge.json").exists()


def test_a_different_base_is_refused(tmp_path: Path) -> None:
    adapter = Path(shutil.copytree(tiny_dpo_run().out, tmp_path / "adapter"))
    record = json.loads((adapter / RECORD_FILE).read_text())
    record["base_model"]["seed"] += 1  # the same config with another seed: other random weights
    (adapter / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(TrainingSetupError, match="differs from the one"):
        load_base(adapter)


def test_merge_needs_a_training_record(tmp_path: Path) -> None:
    with pytest.raises(TrainingSetupError, match=r"no tether_tune\.json"):
        merge_adapter(tmp_path, tmp_path / "out")
