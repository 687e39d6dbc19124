"""Models and tokenizers to train, without the Hugging Face hub.

``--model`` names either a local model directory (``config.json`` and weights, as ``save_pretrained`` writes
them) or a bare ``config.json``, from which a model is built with random weights, seeded so that the same
config and seed give the same base weights again (a merge or a reload rebuilds it; a fingerprint of the
weights, kept in the training record, catches a rebuild that differs).

A tokenizer comes from the model directory when it has one; otherwise :func:`byte_tokenizer` builds one
here: the 256 byte values plus a few special tokens and a chat template, so any text round-trips.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from tether.tune.train_errors import QloraUnavailableError, TrainingSetupError

__all__ = [
    "CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "ModelSource",
    "Task",
    "base_fingerprint",
    "build_model",
    "byte_tokenizer",
    "load_tokenizer",
    "qlora_config",
    "quiet_third_party",
    "require_qlora",
    "resolve_source",
]

Task = Literal["causal", "reward"]

SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>")
# each message is <|role|>content<|end|>; rendering a prompt alone gives a prefix of prompt + completion,
# which TRL needs to find where a completion starts
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """Where base weights come from: a model directory, or a config.json and the seed of the random init."""

    kind: Literal["directory", "config"]
    path: str
    seed: int = 0
    config_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSource:
        return cls(**data)


def resolve_source(path: str | Path, seed: int = 0) -> ModelSource:
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix != ".json":
            raise TrainingSetupError(f"--model {p} is a file but not a config.json; give a model directory or a config")
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        return ModelSource(kind="config", path=str(p.resolve()), seed=seed, config_sha256=digest)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise TrainingSetupError(f"--model {p} has no config.json; give a model directory or a config.json file")
        if not any((p / name).exists() for name in _WEIGHT_FILES):
            raise TrainingSetupError(
                f"--model {p} has a config.json but no weights ({', '.join(_WEIGHT_FILES)}); to train a randomly"
                f" initialised model, pass the file itself: --model {p / 'config.json'}"
            )
        return ModelSource(kind="directory", path=str(p.resolve()), seed=seed)
    raise TrainingSetupError(
        f"--model {p} does not exist; nothing is downloaded here, so give a local model directory or a config.json"
    )


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer built locally: 256 byte tokens, the special tokens, and :data:`CHAT_TEMPLATE`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={char: i for i, char in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core, pad_token="<|pad|>", bos_token="<|bos|>", eos_token="<|end|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def load_tokenizer(source: ModelSource) -> PreTrainedTokenizerBase:
    """The model directory's tokenizer if it has one, else :func:`byte_tokenizer`; always with a chat template
    and a pad token."""
    directory = Path(source.path)
    has_own = source.kind == "directory" and any(
        (directory / name).exists() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    )
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(directory) if has_own else byte_tokenizer()
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _config(source: ModelSource, tokenizer: PreTrainedTokenizerBase, task: Task) -> PretrainedConfig:
    config: PretrainedConfig
    if source.kind == "directory":
        config = AutoConfig.from_pretrained(source.path)
    else:
        try:
            data = json.loads(Path(source.path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingSetupError(f"cannot read the model config {source.path}: {exc}") from exc
        if not isinstance(data, dict) or "model_type" not in data:
            raise TrainingSetupError(f"{source.path} has no 'model_type' (e.g. \"llama\"), so no model can be built")
        model_type = data.pop("model_type")
        try:
            config = AutoConfig.for_model(model_type, **data)
        except ValueError as exc:
            raise TrainingSetupError(f"{source.path}: {exc}") from exc
        vocab = getattr(config, "vocab_size", None)
        if vocab is not None and vocab < len(tokenizer):
            raise TrainingSetupError(
                f"{source.path} has vocab_size {vocab}, fewer than the {len(tokenizer)} tokens of the tokenizer;"
                f" set vocab_size to at least {len(tokenizer)}"
            )
    config.pad_token_id = tokenizer.pad_token_id
    if source.kind == "config":
        config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    if task == "reward":
        config.num_labels = 1
    return config


def require_qlora() -> None:
    """Raise :class:`QloraUnavailableError` unless a CUDA GPU and bitsandbytes are both here."""
    if not torch.cuda.is_available():
        raise QloraUnavailableError(
            "--qlora keeps the frozen weights in 4-bit NF4 with bitsandbytes, which needs a CUDA GPU, and this"
            " machine has none; train without --qlora (LoRA on full-precision weights), or run on a GPU machine"
            " with `pip install 'tether[tune-gpu]'`"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QloraUnavailableError(
            "--qlora needs bitsandbytes, which is not installed; install it with `pip install 'tether[tune-gpu]'`"
        )


def qlora_config() -> Any:
    """QLoRA's recipe: 4-bit NF4 weights with double quantization, computing in bf16."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def build_model(
    source: ModelSource,
    tokenizer: PreTrainedTokenizerBase,
    task: Task = "causal",
    *,
    qlora: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[PreTrainedModel, str | None]:
    """The base model, and for one built from a config the :func:`base_fingerprint` of its random weights.

    With ``qlora`` the weights are quantized to NF4 on the current CUDA device as they load (a model built from
    a config is saved to a temporary directory first, since bitsandbytes quantizes while loading).
    """
    if qlora:
        require_qlora()
    auto = AutoModelForSequenceClassification if task == "reward" else AutoModelForCausalLM
    config = _config(source, tokenizer, task)
    load: dict[str, Any] = {"dtype": torch.bfloat16 if qlora else dtype}
    if qlora:
        load |= {"quantization_config": qlora_config(), "device_map": {"": torch.cuda.current_device()}}
    if source.kind == "directory":
        torch.manual_seed(source.seed)  # a reward head added to a causal model starts from this seed
        model: PreTrainedModel = auto.from_pretrained(source.path, config=config, **load)
        return model, None
    torch.manual_seed(source.seed)
    model = auto.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]  # on the CPU, so the same seed gives the same weights
    fingerprint = base_fingerprint(model)
    if not qlora:
        return model.to(dtype), fingerprint  # type: ignore[arg-type]  # (transformers wraps .to for mypy)
    with tempfile.TemporaryDirectory(prefix="tether-base-") as scratch:
        model.save_pretrained(scratch)
        quantized: PreTrainedModel = auto.from_pretrained(scratch, **load)
    return quantized, fingerprint


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Hide a deprecation that PEFT and TRL trigger inside transformers, which a user cannot act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*is_gradient_checkpointing.* is deprecated", category=FutureWarning
        )
        yield


def base_fingerprint(model: torch.nn.Module) -> str:
    """A short digest of the first values of every parameter of a plain (not yet adapted) model, to tell
    whether a base rebuilt from a config and seed is the one an adapter was trained on."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        sample = parameter.detach().flatten()[:256].to("cpu", torch.float32)
        digest.update(name.encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]
