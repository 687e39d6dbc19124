"""Validate ``tether tune`` end to end: SFT, merge, then (Q)LoRA DPO on a rule the data teaches.

1. A small Llama-style model is built from a config with random weights (``--profile full``: 8 layers of
   width 512, about 25 million parameters; ``--tiny``: 2 layers of width 64, for the CPU).
2. SFT (LoRA) on a generated task: "sort: d b a c" answered with the same letters in a random order, so the
   model learns the format but no order. The adapter is merged into the base (``tether tune merge``).
3. DPO on generated pairs whose *chosen* answer is in alphabetical order and whose *rejected* one is not,
   with QLoRA (NF4 base, bf16 compute) on a GPU, plain LoRA on the CPU.
4. Held-out preference accuracy, log π(chosen) > log π(rejected) on pairs never trained on, before DPO (the
   adapter switched off) and after; on a GPU the peak of ``torch.cuda.max_memory_allocated`` over the DPO run;
   and the capacity planner's training-memory prediction for the same configuration.

Writes ``result.json`` and ``result.md`` (and both runs' ``metrics.png``) under ``--out``.

    python scripts/tune_gpu_validation.py --out runs/tune-validation            # GPU: the acceptance run
    python scripts/tune_gpu_validation.py --device cpu --tiny --out /tmp/tv    # CPU: toy size, a minute
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    letters: int
    sft_examples: int
    sft_steps: int
    sft_rank: int
    sft_lr: float
    pairs: int
    dpo_steps: int
    dpo_rank: int
    dpo_lr: float
    beta: float
    batch: int
    eval_steps: int
    held_out: int
    activation_checkpointing: bool


PROFILES = {
    "full": Profile(
        name="full",
        hidden=512,
        layers=8,
        heads=8,
        intermediate=1376,
        letters=6,
        sft_examples=8000,
        sft_steps=800,
        sft_rank=64,
        sft_lr=1e-3,
        pairs=4000,
        dpo_steps=400,
        dpo_rank=16,
        dpo_lr=5e-4,
        beta=0.1,
        batch=32,
        eval_steps=50,
        held_out=500,
        activation_checkpointing=False,
    ),
    "tiny": Profile(
        name="tiny",
        hidden=64,
        layers=2,
        heads=4,
        intermediate=128,
        letters=4,
        sft_examples=256,
        sft_steps=30,
        sft_rank=16,
        sft_lr=5e-3,
        pairs=256,
        dpo_steps=30,
        dpo_rank=8,
        dpo_lr=1e-2,
        beta=0.1,
        batch=8,
        eval_steps=10,
        held_out=64,
        activation_checkpointing=False,
    ),
}


def model_config(profile: Profile) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "vocab_size": 264,  # the byte tokenizer's 262 tokens, rounded up to a multiple of 8
        "hidden_size": profile.hidden,
        "intermediate_size": profile.intermediate,
        "num_hidden_layers": profile.layers,
        "num_attention_heads": profile.heads,
        "num_key_value_heads": profile.heads,
        "max_position_embeddings": 256,
        "tie_word_embeddings": False,
    }


def _fresh_pairs(profile: Profile, seen: set[str]) -> list[dict[str, Any]]:
    from tether.tune.synthetic import preference_pairs

    rows = preference_pairs(profile.held_out * 2, letters=profile.letters, seed=7)
    fresh = [r for r in rows if r["prompt"][0]["content"] not in seen]
    return fresh[: profile.held_out]


def planner_prediction(config: dict[str, Any], *, qlora: bool, batch: int, sequence: int, profile: Profile) -> Any:
    from tether.plan import architecture_from_config, count_parameters, parse_precision, training_memory
    from tether.plan._units import GIB

    arch = architecture_from_config(config, name=f"validation-{profile.name}")
    return training_memory(
        arch,
        count_parameters(arch),
        mode="qlora" if qlora else "lora",
        weights=parse_precision("bf16" if qlora else "fp32"),
        activations=parse_precision("bf16" if qlora else "fp32"),
        batch=batch,
        sequence=sequence,
        device_memory=80 * GIB,
        checkpointing=profile.activation_checkpointing,
        lora_rank=profile.dpo_rank,
        lora_targets="all-linear",
    )


def run(profile: Profile, out: Path, device: str, qlora: bool) -> dict[str, Any]:
    import torch

    from tether.tune.evaluate import encode, preference_accuracy, reference_mode
    from tether.tune.merge import merge_adapter
    from tether.tune.synthetic import preference_pairs, supervised_examples, write_jsonl
    from tether.tune.train import TrainSettings, train

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    config = model_config(profile)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    sft_data = write_jsonl(
        supervised_examples(profile.sft_examples, letters=profile.letters, seed=0), out / "sft.jsonl"
    )
    pairs = preference_pairs(profile.pairs, letters=profile.letters, seed=1)
    dpo_data = write_jsonl(pairs, out / "pairs.jsonl")
    held_out = _fresh_pairs(profile, {r["prompt"][0]["content"] for r in pairs})
    write_jsonl(held_out, out / "held_out.jsonl")

    common = {"device": device, "progress": sys.stderr.isatty(), "seed": 0, "max_length": 64, "logging_steps": 10}
    sft = train(
        TrainSettings(
            kind="sft",
            data=sft_data,
            model=out / "config.json",
            out=out / "sft",
            max_steps=profile.sft_steps,
            learning_rate=profile.sft_lr,
            lora_rank=profile.sft_rank,
            lora_alpha=2 * profile.sft_rank,
            lora_dropout=0.0,
            batch_size=profile.batch,
            eval_steps=profile.eval_steps,
            eval_fraction=0.05,
            **common,
        )
    )
    sft_summary = {"steps": sft.steps, "seconds": round(sft.seconds, 1), "first": asdict(sft.evaluations[0])}
    sft_summary["last"] = asdict(sft.evaluations[-1])
    del sft
    merge_adapter(out / "sft", out / "sft-merged")
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    dpo = train(
        TrainSettings(
            kind="dpo",
            data=dpo_data,
            model=out / "sft-merged",
            out=out / "dpo",
            qlora=qlora,
            max_steps=profile.dpo_steps,
            learning_rate=profile.dpo_lr,
            lora_rank=profile.dpo_rank,
            lora_alpha=2 * profile.dpo_rank,
            lora_dropout=0.0,
            beta=profile.beta,
            batch_size=profile.batch,
            eval_steps=profile.eval_steps,
            eval_fraction=0.05,
            activation_checkpointing=profile.activation_checkpointing,
            **common,
        )
    )
    peak = int(torch.cuda.max_memory_allocated()) if device == "cuda" else None
    tokenizer_dir = out / "dpo"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    encoded = [
        (encode(tokenizer, r["prompt"], r["chosen"]), encode(tokenizer, r["prompt"], r["rejected"])) for r in held_out
    ]
    model = dpo.model
    with reference_mode(model):
        before = preference_accuracy(model, tokenizer, encoded, batch_size=64)
    model.eval()
    after = preference_accuracy(model, tokenizer, encoded, batch_size=64)
    sequence = max(len(c.ids) for c, _ in encoded)
    # DPO concatenates the chosen and rejected sequences of a batch: 2 × batch sequences in each forward
    plan = planner_prediction(config, qlora=qlora, batch=2 * profile.batch, sequence=sequence, profile=profile)
    params = sum(p.numel() for p in model.get_base_model().parameters())
    result: dict[str, Any] = {
        "profile": asdict(profile),
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "qlora": qlora,
        "model_config": config,
        "parameters_in_memory": params,
        "sft": sft_summary,
        "dpo": {
            "steps": dpo.steps,
            "seconds": round(dpo.seconds, 1),
            "stopped_early": dpo.stopped_early,
            "evaluations": [asdict(e) for e in dpo.evaluations],
            "adapter_bytes": dpo.adapter_bytes,
        },
        "held_out_pairs": len(encoded),
        "preference_accuracy_before": before,
        "preference_accuracy_after": after,
        "sequence_length": sequence,
        "peak_memory_bytes": peak,
        "planner": {
            "mode": plan.mode,
            "base_precision": plan.base_precision,
            "batch": 2 * profile.batch,
            "sequence": sequence,
            "total_bytes": plan.total,
            "parts": plan.parts(),
            "trainable_params": plan.trainable_params,
            "activation_formula": plan.activation_formula,
        },
        "memory_error_percent": (100.0 * (plan.total - peak) / peak) if peak else None,
        "seconds": round(time.perf_counter() - started, 1),
        "plots": [str(out / "sft" / "metrics.png"), str(out / "dpo" / "metrics.png")],
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "result.md").write_text(markdown(result) + "\n")
    return result


def markdown(result: dict[str, Any]) -> str:
    mib = 2**20
    plan = result["planner"]
    lines = [
        f"Device: {result['device']}; QLoRA: {result['qlora']}; {result['parameters_in_memory']:,} parameters;"
        f" held-out pairs: {result['held_out_pairs']}; total time {result['seconds']} s.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| preference accuracy before DPO | {result['preference_accuracy_before']:.1%} |",
        f"| preference accuracy after DPO | {result['preference_accuracy_after']:.1%} |",
        f"| DPO steps | {result['dpo']['steps']} ({result['dpo']['seconds']} s) |",
        f"| adapter size | {result['dpo']['adapter_bytes'] / mib:.2f} MiB |",
    ]
    if result["peak_memory_bytes"] is not None:
        lines += [
            f"| peak GPU memory, measured | {result['peak_memory_bytes'] / mib:,.1f} MiB |",
            f"| planner's prediction | {plan['total_bytes'] / mib:,.1f} MiB |",
            f"| planner error | {result['memory_error_percent']:+.1f}% |",
        ]
    else:
        lines.append(f"| planner's prediction (no GPU, not measured) | {plan['total_bytes'] / mib:,.1f} MiB |")
    lines += ["", "Planner parts: " + ", ".join(f"{k} {v / mib:,.2f} MiB" for k, v in plan["parts"].items())]
    lines += [f"Activations: {plan['activation_formula']}, batch {plan['batch']} × sequence {plan['sequence']}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/tune-validation"))
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the toy profile (CPU-sized)")
    parser.add_argument("--short", action="store_true", help="half the SFT and DPO steps (the GPU test)")
    parser.add_argument("--no-qlora", action="store_true", help="plain LoRA on the GPU")
    args = parser.parse_args(argv)
    profile = PROFILES["tiny" if args.tiny else "full"]
    if args.short:
        profile = Profile(
            **(
                asdict(profile)
                | {
                    "name": profile.name + "-short",
                    "sft_steps": profile.sft_steps // 2,
                    "dpo_steps": profile.dpo_steps // 2,
                }
            )
        )
    qlora = args.device == "cuda" and not args.no_qlora
    result = run(profile, args.out, args.device, qlora)
    print(markdown(result))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
