from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tether.plan import (
    MODEL_PRESETS,
    PlanError,
    architecture_from_config,
    count_parameters,
    device_preset,
    load_config,
    model_preset,
    preset_architecture,
)

LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "vocab_size": 100,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 40,
}


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_reads_a_config_file_or_its_directory(tmp_path: Path) -> None:
    path = write(tmp_path, LLAMA)
    assert count_parameters(load_config(path)).total == 8656  # tests/plan/_shapes.py works it out
    assert load_config(tmp_path) == load_config(path)


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    config = dict(LLAMA)
    del config["intermediate_size"]
    with pytest.raises(PlanError, match="lacks required key 'intermediate_size'"):
        load_config(write(tmp_path, config))
    with pytest.raises(PlanError, match="lacks required key 'n_embd'"):
        architecture_from_config({"model_type": "gpt2", "vocab_size": 10})


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no config file"):
        load_config(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PlanError, match="not valid JSON"):
        load_config(broken)
    with pytest.raises(PlanError, match="whole number"):
        architecture_from_config({**LLAMA, "hidden_size": "sixteen"})
    with pytest.raises(PlanError, match="heads cannot share"):
        architecture_from_config({**LLAMA, "num_key_value_heads": 3})


def test_unknown_families_are_read_by_their_keys_with_a_note() -> None:
    arch = architecture_from_config({**LLAMA, "model_type": "phi3"})
    assert arch.family == "llama"
    assert "phi3" in arch.notes[0]
    assert architecture_from_config({"n_embd": 16, "n_layer": 1, "n_head": 4, "vocab_size": 10}).family == "gpt2"


def test_family_defaults() -> None:
    gpt2 = architecture_from_config({"model_type": "gpt2", "vocab_size": 10, "n_embd": 16, "n_layer": 1, "n_head": 4})
    assert gpt2.tied_embeddings and gpt2.learned_positions == 1024 and gpt2.intermediate_size == 64
    qwen = architecture_from_config({**LLAMA, "model_type": "qwen2", "sliding_window": 32, "use_sliding_window": False})
    assert qwen.qkv_bias and not qwen.output_bias and qwen.sliding_window is None
    biased = architecture_from_config({**LLAMA, "attention_bias": True, "mlp_bias": True})
    assert biased.qkv_bias and biased.output_bias and biased.mlp_bias
    assert architecture_from_config({**LLAMA, "head_dim": 8}).head_dim == 8
    assert architecture_from_config({**LLAMA, "head_dim": None}).head_dim == 4


def test_sliding_window_layers() -> None:
    mistral = architecture_from_config({**LLAMA, "model_type": "mistral", "sliding_window": 8})
    assert (mistral.sliding_window, mistral.sliding_layers) == (8, 2)
    mixed = architecture_from_config(
        {**LLAMA, "sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"]}
    )
    assert mixed.sliding_layers == 1
    qwen = architecture_from_config(
        {**LLAMA, "model_type": "qwen2", "sliding_window": 8, "use_sliding_window": True, "max_window_layers": 1}
    )
    assert qwen.sliding_layers == 1


def test_presets_and_their_errors() -> None:
    assert model_preset("Llama_2_7B").name == "llama-2-7b"
    assert preset_architecture("gpt3").num_layers == 96
    with pytest.raises(PlanError, match="unknown model preset 'llama-9'") as info:
        model_preset("llama-9")
    assert all(name in str(info.value) for name in MODEL_PRESETS)
    with pytest.raises(PlanError, match=r"unknown device 'tpu'.*h100"):
        device_preset("tpu")


@pytest.mark.parametrize(
    "name", ["llama-2-7b", "llama-3-70b", "mistral-7b", "mixtral-8x7b", "deepseek-v3", "gpt-3-175b", "qwen2-7b"]
)
def test_required_presets_have_their_published_shapes(name: str) -> None:
    arch = preset_architecture(name)
    assert arch.num_layers > 0
    assert count_parameters(arch).total > 1e9
