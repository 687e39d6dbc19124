"""Training on the CPU at toy size: a DPO run whose loss falls and whose adapter reloads to the same logits,
SFT and reward-model smoke runs, the KL watch, QLoRA's error without a GPU, and the validation script's
CPU mode."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from typer.testing import CliRunner  # noqa: E402

from tether.cli import app  # noqa: E402
from tether.tune.merge import load_adapted  # noqa: E402
from tether.tune.synthetic import preference_pairs, supervised_examples, write_jsonl  # noqa: E402
from tether.tune.train import RECORD_FILE, read_examples, train  # noqa: E402
from tether.tune.train_errors import QloraUnavailableError, TrainingSetupError  # noqa: E402

from .training import chat_ids, settings, tiny_dpo_run, write_config  # noqa: E402

ROOT = Path(__file__).parents[2]


def test_dpo_loss_falls_and_preferences_follow_the_rule() -> None:
    run = tiny_dpo_run()
    first, last = run.first, run.last
    assert first is not None and last is not None and first.step == 0 and last.step == run.steps == 20
    assert first.eval_loss == pytest.approx(0.6931, abs=1e-3)  # policy = reference: −log σ(0)
    assert last.eval_loss < first.eval_loss - 0.03
    assert first.kl == pytest.approx(0.0, abs=1e-6) and last.kl is not None and last.kl > 0
    assert last.reward_margin is not None and last.reward_margin > 0
    assert last.preference_accuracy is not None and first.preference_accuracy is not None
    assert last.preference_accuracy > first.preference_accuracy


def test_the_adapter_is_small_and_recorded() -> None:
    run = tiny_dpo_run()
    out: Path = run.out
    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", RECORD_FILE, "metrics.json", "metrics.png"} <= names
    assert "model.safetensors" not in names  # the adapter only, never the base weights
    assert run.adapter_bytes < 200_000
    record = json.loads((out / RECORD_FILE).read_text())
    data = Path(record["data"]["path"])
    assert record["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest() == run.data_sha256
    assert record["base_model"]["kind"] == "config" and record["base_model"]["fingerprint"]
    assert record["settings"]["lora_rank"] == 8 and record["versions"]["trl"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["step"] for e in metrics["evaluations"]] == [0, 5, 10, 15, 20]
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_the_saved_adapter_reloads_to_identical_logits() -> None:
    run = tiny_dpo_run()
    reloaded, tokenizer = load_adapted(run.out)
    batch = chat_ids(tokenizer, "d b a c", "m k z q")
    trained = run.model.eval()
    with torch.no_grad():
        expected, got = trained(**batch).logits, reloaded(**batch).logits
    assert torch.equal(got, expected)


def test_kl_bound_stops_training_early(tmp_path: Path) -> None:
    data = write_jsonl(preference_pairs(48, letters=4), tmp_path / "pairs.jsonl")
    run = train(settings("dpo", data, write_config(tmp_path), tmp_path / "out", max_kl=1e-3, max_steps=30))
    assert run.stopped_early is not None and run.stopped_early["max_kl"] == 1e-3
    assert run.steps == 5 < 30  # the first evaluation after step 0 already passed the bound
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["stopped_early"]["step"] == 5


def test_sft_smoke(tmp_path: Path) -> None:
    data = write_jsonl(supervised_examples(48, letters=4), tmp_path / "sft.jsonl")
    run = train(settings("sft", data, write_config(tmp_path), tmp_path / "out", max_steps=10))
    assert run.first is not None and run.last is not None
    assert run.last.eval_loss is not None and run.first.eval_loss is not None
    assert run.last.eval_loss < run.first.eval_loss
    assert run.last.kl is not None and run.last.kl > 0 and run.last.preference_accuracy is None
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_reward_model_smoke(tmp_path: Path) -> None:
    data = write_jsonl(preference_pairs(48, letters=4), tmp_path / "pairs.jsonl")
    run = train(settings("reward", data, write_config(tmp_path), tmp_path / "out", max_steps=10, learning_rate=3e-3))
    assert run.last is not None and run.last.reward_accuracy is not None and run.last.kl is None
    reloaded, tokenizer = load_adapted(tmp_path / "out")  # the score head is saved with the adapter
    with torch.no_grad():
        trained = run.model.eval()(**chat_ids(tokenizer, "b a")).logits
        assert torch.equal(reloaded(**chat_ids(tokenizer, "b a")).logits, trained)
    assert trained.shape == (1, 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_qlora_on_the_cpu_fails_clearly(tmp_path: Path) -> None:
    data = write_jsonl(preference_pairs(8), tmp_path / "pairs.jsonl")
    with pytest.raises(QloraUnavailableError, match=r"needs a CUDA GPU.*without --qlora"):
        train(settings("dpo", data, write_config(tmp_path), tmp_path / "out", qlora=True))
    args = ["tune", "dpo", "--data", str(data), "--model", str(tmp_path / "config.json"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, "--qlora"])
    assert result.exit_code == 2
    assert "needs a CUDA GPU" in result.output and "tether[tune-gpu]" in result.output
    assert not (tmp_path / "o").exists()


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"prompt": [{"role": "user", "content": "hi"}], "completion": 3}\n')
    with pytest.raises(TrainingSetupError, match=r"bad\.jsonl:1: 'completion' should be"):
        read_examples(tmp_path / "bad.jsonl", "sft")
    data = write_jsonl(supervised_examples(4), tmp_path / "sft.jsonl")
    with pytest.raises(TrainingSetupError, match="0 usable dpo examples"):
        read_examples(data, "dpo")
    small = write_config(tmp_path, vocab_size=100)
    with pytest.raises(TrainingSetupError, match="vocab_size 100, fewer than the 262 tokens"):
        train(settings("sft", data, small, tmp_path / "out"))
    with pytest.raises(TrainingSetupError, match="does not exist"):
        train(settings("sft", data, tmp_path / "nowhere", tmp_path / "out"))


def test_dpo_from_the_command_line(tmp_path: Path) -> None:
    data = write_jsonl(preference_pairs(24, letters=3), tmp_path / "pairs.jsonl")
    model = write_config(tmp_path)
    paths = ["--data", str(data), "--model", str(model), "--out", str(tmp_path / "out")]
    small = ["--max-steps", "4", "--batch-size", "4", "--rank", "4", "--device", "cpu", "--no-progress", "--json"]
    result = CliRunner().invoke(app, ["tune", "dpo", *paths, *small])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["steps"] == 4 and summary["adapter_bytes"] > 0 and summary["first"]["kl"] == 0


def load_validation_script(monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("tune_gpu_validation", ROOT / "scripts" / "tune_gpu_validation.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "tune_gpu_validation", script)  # dataclasses look their module up
    spec.loader.exec_module(script)
    return script


def test_validation_script_runs_at_toy_size_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_validation_script(monkeypatch)
    result = script.main(["--device", "cpu", "--tiny", "--out", str(tmp_path)])
    assert result["qlora"] is False and result["peak_memory_bytes"] is None
    assert 0.25 <= result["preference_accuracy_before"] <= 0.75  # after SFT on random orders: no preference
    assert result["preference_accuracy_after"] >= result["preference_accuracy_before"] + 0.2
    assert result["planner"]["mode"] == "lora" and result["planner"]["total_bytes"] > 0
    assert (tmp_path / "result.md").read_text().startswith("Device: cpu")
    assert (tmp_path / "sft-merged" / "model.safetensors").exists()
