"""SFT, reward-model and DPO training with LoRA adapters, on TRL's trainers.

One entry point, :func:`train`, for the three kinds of run. It reads the exported JSONL (TRL's
conversational format), holds out a seeded share of it, loads or builds the base model (``tether.tune.models``),
wraps it in a PEFT LoRA adapter (optionally over 4-bit NF4 weights: QLoRA), trains, and writes to ``out``:

    adapter_model.safetensors, adapter_config.json   the adapter only (PEFT's format)
    tokenizer files                                  the tokenizer it was trained with
    tether_tune.json                                 settings, base model, data file and its sha256, versions
    metrics.json, metrics.png                        one record per evaluation step, and their plot
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import PrinterCallback

from tether.tune.evaluate import Encoded, encode
from tether.tune.metrics import EvalRecord, EvalRecorder, plot_metrics
from tether.tune.models import (
    ModelSource,
    Task,
    build_model,
    load_tokenizer,
    quiet_third_party,
    require_qlora,
    resolve_source,
)
from tether.tune.train_errors import TrainingSetupError

__all__ = [
    "RECORD_FILE",
    "Kind",
    "TrainResult",
    "TrainSettings",
    "read_examples",
    "train",
]

Kind = Literal["sft", "reward", "dpo"]
RECORD_FILE = "tether_tune.json"
_DEFAULT_LR: dict[Kind, float] = {"sft": 2e-4, "reward": 1e-4, "dpo": 5e-5}
_KL_EXAMPLES = 64  # held-out sequences the KL and preference accuracy are measured on


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    kind: Kind
    data: Path
    model: Path
    out: Path
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"  # or module names separated by commas ("q_proj,v_proj")
    qlora: bool = False
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs
    learning_rate: float | None = None  # None: 2e-4 for SFT, 1e-4 for reward models, 5e-5 for DPO
    batch_size: int = 4
    gradient_accumulation: int = 1
    max_length: int = 512
    beta: float = 0.1  # DPO's KL weight
    eval_fraction: float = 0.1
    eval_steps: int | None = None  # None: about ten evaluations a run
    max_kl: float | None = None  # stop once held-out KL to the reference passes this
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    activation_checkpointing: bool = False
    progress: bool = True
    logging_steps: int = 10
    warmup_steps: float = 0.0  # a whole number of steps, or a fraction (below 1) of the run


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    out: Path
    adapter_bytes: int
    train_examples: int
    eval_examples: int
    skipped_lines: int
    data_sha256: str
    steps: int
    seconds: float
    evaluations: list[EvalRecord] = field(default_factory=list)
    stopped_early: dict[str, float] | None = None
    plot: Path | None = None
    model: Any = field(default=None, repr=False, compare=False)  # the trained PEFT model, still in memory

    @property
    def first(self) -> EvalRecord | None:
        return self.evaluations[0] if self.evaluations else None

    @property
    def last(self) -> EvalRecord | None:
        return self.evaluations[-1] if self.evaluations else None


def _messages(value: Any, where: str, key: str) -> list[dict[str, str]]:
    if isinstance(value, str):  # a bare completion string: one assistant message (prompt: one user message)
        return [{"role": "assistant" if key != "prompt" else "user", "content": value}]
    ok = isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    )
    if not ok or not value:
        raise TrainingSetupError(f"{where}: {key!r} should be a non-empty list of {{role, content}} messages")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def read_examples(path: Path, kind: Kind) -> tuple[list[dict[str, Any]], int]:
    """The examples a run of ``kind`` can use from an exported JSONL file, and how many lines it skipped.

    SFT takes ``prompt`` + ``completion`` lines, and the chosen side of preference lines; reward and DPO
    runs take ``prompt`` + ``chosen`` + ``rejected`` lines. ``meta`` is not trained on.
    """
    if not path.is_file():
        raise TrainingSetupError(f"--data {path} does not exist; export one with `tether tune export`")
    examples: list[dict[str, Any]] = []
    skipped = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrainingSetupError(f"{where} is not JSON: {exc}") from exc
        if not isinstance(row, dict) or "prompt" not in row:
            raise TrainingSetupError(f"{where}: each line should be an object with a 'prompt'")
        prompt = _messages(row["prompt"], where, "prompt")
        if kind == "sft" and ("completion" in row or "chosen" in row):
            key = "completion" if "completion" in row else "chosen"
            examples.append({"prompt": prompt, "completion": _messages(row[key], where, key)})
        elif kind != "sft" and "chosen" in row and "rejected" in row:
            examples.append(
                {
                    "prompt": prompt,
                    "chosen": _messages(row["chosen"], where, "chosen"),
                    "rejected": _messages(row["rejected"], where, "rejected"),
                }
            )
        else:
            skipped += 1
    if len(examples) < 2:
        need = "prompt + completion (or chosen)" if kind == "sft" else "prompt + chosen + rejected"
        raise TrainingSetupError(
            f"{path} has {len(examples)} usable {kind} examples ({need}); at least 2 are needed,"
            " one to train on and one to hold out"
        )
    return examples, skipped


def _split(examples: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    if not 0 < fraction < 1:
        raise TrainingSetupError(f"--eval-fraction should be between 0 and 1, got {fraction}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = max(1, round(len(examples) * fraction))
    return [examples[i] for i in order[held:]], [examples[i] for i in order[:held]]


def _device(settings: TrainSettings) -> str:
    if settings.qlora:
        require_qlora()
        return "cuda"
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise TrainingSetupError("--device cuda was asked for, but torch sees no CUDA device here")
    return settings.device


def _targets(spec: str) -> str | list[str]:
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise TrainingSetupError("--target-modules is empty; give 'all-linear' or module names like q_proj,v_proj")
    return "all-linear" if names == ["all-linear"] else names


def _trainer(
    settings: TrainSettings,
    model: Any,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    device: str,
    recorder: EvalRecorder,
) -> Any:
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer
    from trl.trainer.reward_config import RewardConfig
    from trl.trainer.reward_trainer import RewardTrainer
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    steps_per_epoch = max(1, len(train_rows) // (settings.batch_size * settings.gradient_accumulation))
    total = settings.max_steps or max(1, round(steps_per_epoch * settings.epochs))
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    common: dict[str, Any] = {
        "output_dir": str(settings.out),
        "use_cpu": device == "cpu",
        "report_to": [],
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation,
        "learning_rate": settings.learning_rate or _DEFAULT_LR[settings.kind],
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps or -1,
        "warmup_steps": settings.warmup_steps,
        "logging_steps": settings.logging_steps,
        "eval_strategy": "steps",
        "eval_steps": settings.eval_steps or max(1, total // 10),
        "save_strategy": "no",
        "activation_checkpointing": settings.activation_checkpointing,
        "bf16": bf16,
        "fp16": False,
        "dataloader_num_workers": 0,
        "disable_tqdm": not settings.progress,
        "seed": settings.seed,
        "max_length": settings.max_length,
    }
    task_type = "SEQ_CLS" if settings.kind == "reward" else "CAUSAL_LM"
    peft = LoraConfig(
        r=settings.lora_rank,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=_targets(settings.target_modules),
        task_type=task_type,
    )
    train_ds, eval_ds = Dataset.from_list(train_rows), Dataset.from_list(eval_rows)
    shared = {
        "model": model,
        "train_dataset": train_ds,
        "eval_dataset": eval_ds,
        "processing_class": tokenizer,
        "peft_config": peft,
        "callbacks": [recorder],
    }
    if settings.kind == "sft":
        return SFTTrainer(args=SFTConfig(**common), **shared)
    if settings.kind == "reward":
        return RewardTrainer(args=RewardConfig(**common), **shared)
    return DPOTrainer(args=DPOConfig(**common, beta=settings.beta), **shared)


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    """Switch the datasets and transformers progress bars off for a quiet run, and back on after it."""
    import datasets
    from transformers.utils import logging as hf_logging

    was = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was[0] and not enabled:
            datasets.enable_progress_bars()
        if was[1] and not enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import peft
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
    }


def write_record(out: Path, data: dict[str, Any]) -> None:
    (out / RECORD_FILE).write_text(json.dumps(data, indent=2, default=str) + "\n")


def _held_out(tokenizer: Any, rows: list[dict[str, Any]], kind: Kind) -> tuple[list[Any], list[Encoded]]:
    rows = rows[:_KL_EXAMPLES]
    if kind == "sft":
        return [], [encode(tokenizer, r["prompt"], r["completion"]) for r in rows]
    pairs = [(encode(tokenizer, r["prompt"], r["chosen"]), encode(tokenizer, r["prompt"], r["rejected"])) for r in rows]
    return pairs, [chosen for chosen, _ in pairs]


def train(settings: TrainSettings) -> TrainResult:
    """Train a LoRA adapter of kind ``settings.kind`` and write it, with its record and metrics, to ``settings.out``."""
    started = time.perf_counter()
    device = _device(settings)  # fails first, with a clear message, for --qlora without a GPU
    examples, skipped = read_examples(settings.data, settings.kind)
    train_rows, eval_rows = _split(examples, settings.eval_fraction, settings.seed)
    source: ModelSource = resolve_source(settings.model, settings.seed)
    tokenizer = load_tokenizer(source)
    task: Task = "reward" if settings.kind == "reward" else "causal"
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    settings.out.mkdir(parents=True, exist_ok=True)
    pairs, completions = _held_out(tokenizer, eval_rows, settings.kind)
    recorder = EvalRecorder(
        kind=settings.kind,
        tokenizer=tokenizer,
        path=settings.out / "metrics.json",
        pairs=pairs,
        completions=completions,
        max_kl=settings.max_kl,
        batch_size=settings.batch_size,
    )
    with quiet_third_party(), _progress_bars(settings.progress):
        model, fingerprint = build_model(source, tokenizer, task, qlora=settings.qlora, dtype=dtype)
        trainer = _trainer(settings, model, tokenizer, train_rows, eval_rows, device, recorder)
        if not settings.progress:
            trainer.remove_callback(PrinterCallback)  # it prints every log line when the progress bar is off
        trainer.evaluate()  # the step-0 record: the model before any update
        trainer.train()
        if recorder.stopped is None and recorder.records[-1].step != trainer.state.global_step:
            trainer.evaluate()  # the last step's record, when the run did not end on an evaluation
        trainer.model.save_pretrained(settings.out)
    tokenizer.save_pretrained(settings.out)
    plot = plot_metrics(
        recorder.records,
        settings.out / "metrics.png",
        title=f"{settings.kind} · {settings.data.name}",
        max_kl=settings.max_kl,
    )
    adapter_bytes = sum(p.stat().st_size for p in settings.out.glob("adapter_model.*"))
    data_sha = _sha256(settings.data)
    result = TrainResult(
        out=settings.out,
        adapter_bytes=adapter_bytes,
        train_examples=len(train_rows),
        eval_examples=len(eval_rows),
        skipped_lines=skipped,
        data_sha256=data_sha,
        steps=int(trainer.state.global_step),
        seconds=time.perf_counter() - started,
        evaluations=list(recorder.records),
        stopped_early=recorder.stopped,
        plot=plot,
        model=trainer.model,
    )
    write_record(
        settings.out,
        {
            "format": 1,
            "kind": settings.kind,
            "task": task,
            "settings": asdict(settings),
            "base_model": source.to_json() | {"fingerprint": fingerprint},
            "data": {
                "path": str(settings.data),
                "sha256": data_sha,
                "train_examples": len(train_rows),
                "eval_examples": len(eval_rows),
                "skipped_lines": skipped,
            },
            "device": device,
            "steps": result.steps,
            "seconds": round(result.seconds, 3),
            "adapter_bytes": adapter_bytes,
            "stopped_early": recorder.stopped,
            "versions": _versions(),
        },
    )
    return result
