"""What is asked of the model: how many sequences, how long, in which number formats."""

from __future__ import annotations

from pydantic import Field

from tether.plan._precision import Precision, parse_precision
from tether.plan._record import Record
from tether.plan._units import GIB

_BF16 = parse_precision("bf16")


class Workload(Record):
    derived = ("context",)

    batch: int = Field(default=1, ge=1)
    prompt_tokens: int = Field(default=3840, ge=1)
    generated_tokens: int = Field(default=256, ge=0)
    weights: Precision = _BF16
    activations: Precision = _BF16
    kv_cache: Precision = _BF16
    # tokens a prefill pushes through at once (vLLM's chunked prefill); None: the whole batch of prompts
    prefill_chunk: int | None = Field(default=None, ge=1)
    # CUDA context, allocator slack and framework buffers the runtime keeps for itself
    overhead_bytes: float = Field(default=1.0 * GIB, ge=0)

    @property
    def context(self) -> int:
        """Tokens per sequence at the end: the prompt and what was generated."""
        return self.prompt_tokens + self.generated_tokens

    def with_context(self, context: int) -> Workload:
        """The same workload for a context of ``context`` tokens, generating as many as before."""
        generated = min(self.generated_tokens, context - 1)
        return self.model_copy(update={"prompt_tokens": context - generated, "generated_tokens": generated})
