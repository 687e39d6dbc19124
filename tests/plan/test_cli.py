from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tether.cli import app
from tether.plan._cli import app as plan_app

runner = CliRunner()
ROOT = Path(__file__).parents[2]
ASKED = ["plan", "--preset", "llama-2-7b", "--context", "4096", "--batch", "8", "--kv-precision", "fp16"]


def test_the_asked_question_gets_a_readable_answer() -> None:
    result = runner.invoke(app, ASKED)
    assert result.exit_code == 0, result.output
    for words in ("FITS", "Parameters", "6,738,415,616", "KV cache", "16.00 GiB", "Speed on h100", "decode"):
        assert words in result.output


def test_json_carries_the_figures() -> None:
    result = runner.invoke(app, [*ASKED, "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["parameters"]["total"] == 6_738_415_616
    assert plan["kv_cache"]["bytes_per_token"] == 2 * 32 * 4096 * 2
    assert plan["kv_cache"]["total_bytes"] == 8 * 4096 * 2 * 32 * 4096 * 2
    assert plan["memory"]["fits"] is True
    assert plan["speed"]["decode_step"]["bound"] == "memory bandwidth"
    assert plan["limits"]["max_batch"] >= 8


def test_config_file_training_and_speculative_options(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "mistral",
                "vocab_size": 32000,
                "hidden_size": 4096,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "intermediate_size": 14336,
                "sliding_window": 4096,
            }
        )
    )
    args = ["plan", "--config", str(config), "--device", "rtx-4090", "--weights-precision", "nf4-dq"]
    args += ["--train", "qlora", "--lora-rank", "16", "--speculative", "--acceptance", "0.7", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["parameters"]["total"] == 7_241_732_096
    assert plan["training"]["mode"] == "qlora"
    assert plan["training"]["lora"]["rank"] == 16
    assert plan["speculative"]["acceptance_rate"] == 0.7
    assert plan["workload"]["weights"]["name"] == "nf4-dq"


def test_training_and_speculative_tables() -> None:
    args = ["plan", "--preset", "llama-2-7b", "--train", "lora", "--speculative", "--draft-preset", "gpt2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Training memory: lora" in result.output
    assert "Speculative decoding" in result.output
    assert "12 × d_model × layers × bytes" in result.output


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "memory.png"
    result = runner.invoke(app, [*ASKED, "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "llama-9"], "unknown model preset 'llama-9'; known: llama-2-7b"),
        ([], "give exactly one of --preset NAME or --config"),
        (["--preset", "gpt2", "--device", "tpu"], "unknown device 'tpu'"),
        (["--preset", "gpt2", "--weights-precision", "fp5"], "unknown precision 'fp5'"),
        (["--preset", "gpt2", "--train", "rlhf"], "unknown --train mode 'rlhf'"),
        (["--preset", "gpt2", "--context", "100", "--generate", "200"], "leaves no room"),
        (["--preset", "gpt2", "--train", "full", "--weights-precision", "int4"], "full fine-tuning"),
    ],
)
def test_errors_name_the_problem(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["plan", "--batch", "1", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_preset_and_device_lists() -> None:
    presets = runner.invoke(app, ["plan", "presets", "--json"])
    assert presets.exit_code == 0, presets.output
    assert {row["name"] for row in json.loads(presets.output)} >= {"llama-2-7b", "deepseek-v3", "gpt-3-175b"}
    devices = runner.invoke(app, ["plan", "devices"])
    assert devices.exit_code == 0
    for name in ("a100-40g", "a100-80g", "h100", "h200", "l4", "rtx-4090"):
        assert name in devices.output


def test_every_command_and_option_has_help() -> None:
    group = typer.main.get_command(plan_app)  # typer's own click: inspect it by its attributes
    subcommands = getattr(group, "commands", {})
    assert set(subcommands) == {"presets", "devices", "validate"}
    for command in [group, *subcommands.values()]:
        assert command.help, command.name
        options = [p for p in command.params if p.param_type_name == "option"]
        assert options or command is not group
        for option in options:
            assert getattr(option, "help", None), f"{command.name} {option.name}"


def test_the_cli_stays_light_and_quick() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import tether.cli; "
        "print([m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tether.cli", *ASKED], capture_output=True, check=True, cwd=ROOT)
    assert time.perf_counter() - start < 3  # about 0.3 s here; the slack is for loaded machines
