"""``init_chat_model("provider:model")``: a chat model by name."""

from __future__ import annotations

import importlib
from typing import Any

from tether.models._base import BaseChatModel, ChatModelError

__all__ = ["PROVIDERS", "init_chat_model"]

# provider -> "module:class"; imported only when asked for, so the core stays light
PROVIDERS: dict[str, str] = {
    "openai": "tether.models._openai:ChatOpenAI",
    "ollama": "tether.models._ollama:ChatOllama",
    "scripted": "tether.models._scripted:ScriptedChatModel",
}


def init_chat_model(model: str, *, model_provider: str | None = None, **kwargs: Any) -> BaseChatModel:
    """``init_chat_model("openai:gpt-4o-mini")``, ``init_chat_model("ollama:llama3.2")``.

    Any OpenAI-compatible server (vLLM, llama.cpp, LM Studio…) is ``openai:`` with ``base_url=``
    or ``OPENAI_BASE_URL``. Extra keyword arguments go to the client.
    """
    provider, _, name = model.partition(":") if model_provider is None else (model_provider, ":", model)
    if not name:
        provider, name = "openai", model
    target = PROVIDERS.get(provider)
    if target is None:
        raise ChatModelError(f"unknown model provider {provider!r}; known: {', '.join(sorted(PROVIDERS))}")
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise ChatModelError(
            f"the {provider!r} client needs extra packages: pip install 'tether[models]' ({exc})"
        ) from exc
    if provider == "scripted":
        return cls(name=name, **kwargs)  # type: ignore[no-any-return]
    return cls(model=name, **kwargs)  # type: ignore[no-any-return]
