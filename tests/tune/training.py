"""Shared pieces of the training tests: a tiny Llama config, generated data, and one DPO run per session.

Nothing is downloaded: the model is built from a config with random weights and the tokenizer is built here.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "vocab_size": 264,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
}


def scratch_dir(name: str) -> Path:
    """A directory that lives for the whole test session (shared runs outlive any one test's tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix=f"tether-tune-{name}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def write_config(directory: Path, **changes: Any) -> Path:
    path = directory / "config.json"
    path.write_text(json.dumps(TINY_LLAMA | changes))
    return path


def settings(kind: str, data: Path, model: Path, out: Path, **changes: Any) -> Any:
    from tether.tune.train import TrainSettings

    base: dict[str, Any] = {
        "kind": kind,
        "data": data,
        "model": model,
        "out": out,
        "max_steps": 20,
        "learning_rate": 1e-2,
        "batch_size": 8,
        "eval_steps": 5,
        "eval_fraction": 0.25,
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "device": "cpu",
        "progress": False,
    }
    return TrainSettings(**(base | changes))


@functools.cache
def tiny_dpo_run() -> Any:
    """Twenty DPO steps of a 2-layer, width-64 Llama on 64 generated pairs (about two seconds)."""
    from tether.tune.synthetic import preference_pairs, write_jsonl
    from tether.tune.train import train

    root = scratch_dir("dpo")
    data = write_jsonl(preference_pairs(64, letters=4), root / "pairs.jsonl")
    return train(settings("dpo", data, write_config(root), root / "adapter"))


def chat_ids(tokenizer: Any, *texts: str) -> Any:
    """A right-padded batch of rendered conversations, as model inputs."""
    import torch

    rows = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"sort: {t}"}, {"role": "assistant", "content": " ".join(sorted(t.split()))}],
            return_dict=True,
        )["input_ids"]
        for t in texts
    ]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}
