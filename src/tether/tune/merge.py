"""Reload a trained adapter over its base model, and fold it into the base weights for serving.

The base is rebuilt from the training record (``tether_tune.json``): loaded from its directory, or built
again from its config and seed, and then checked against the fingerprint taken when the adapter was trained.
Merging computes W + (α/r)·B·A once per adapted matrix, so the merged model's logits equal the adapted
model's (to floating-point rounding) at the cost of an adapter-free forward pass. An adapter trained over
4-bit weights (QLoRA) is merged into the full-precision base, not into the 4-bit copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from tether.tune.models import ModelSource, build_model, quiet_third_party
from tether.tune.train import RECORD_FILE
from tether.tune.train_errors import TrainingSetupError

__all__ = ["load_adapted", "load_base", "merge_adapter", "read_record"]


def read_record(adapter_dir: Path) -> dict[str, Any]:
    path = Path(adapter_dir) / RECORD_FILE
    if not path.is_file():
        raise TrainingSetupError(
            f"{adapter_dir} has no {RECORD_FILE}; give a directory written by `tether tune sft|reward|dpo`"
        )
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def load_base(
    adapter_dir: Path, *, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model the adapter in ``adapter_dir`` was trained on (full precision), and its tokenizer."""
    record = read_record(adapter_dir)
    base = dict(record["base_model"])
    expected = base.pop("fingerprint", None)
    source = ModelSource.from_json(base)
    if not Path(source.path).exists():
        raise TrainingSetupError(f"the base model of {adapter_dir}, {source.path}, is no longer there")
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    model, fingerprint = build_model(source, tokenizer, record["task"], dtype=dtype)
    if expected is not None and fingerprint != expected:
        raise TrainingSetupError(
            f"the base rebuilt from {source.path} (seed {source.seed}) differs from the one {adapter_dir} was"
            f" trained on (fingerprint {fingerprint}, expected {expected}); the config or the library versions"
            f" changed since: {record.get('versions')}"
        )
    return model, tokenizer


def load_adapted(adapter_dir: Path, *, dtype: torch.dtype = torch.float32) -> tuple[PeftModel, PreTrainedTokenizerBase]:
    """Base + adapter, in eval mode, ready to score or generate."""
    model, tokenizer = load_base(adapter_dir, dtype=dtype)
    with quiet_third_party():
        adapted = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    adapted.eval()
    return adapted, tokenizer


def merge_adapter(adapter_dir: Path, out: Path, *, dtype: torch.dtype = torch.float32) -> Path:
    """Write base weights with the adapter folded in, and the tokenizer, to ``out``: a plain model directory
    that ``transformers`` (and ``--model``) load without PEFT."""
    adapted, tokenizer = load_adapted(adapter_dir, dtype=dtype)
    merged = adapted.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "tether_merge.json").write_text(
        json.dumps(
            {"adapter": str(Path(adapter_dir).resolve()), "base_model": read_record(adapter_dir)["base_model"]},
            indent=2,
        )
        + "\n"
    )
    return out
