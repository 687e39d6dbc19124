"""``create_react_agent``: a model that calls tools in a loop until it can answer.

    START → [pre_model_hook] → agent ⇄ tools
                                 └→ [generate_structured_response] → END

The graph is an ordinary ``StateGraph``: with a checkpointer every thread keeps its
conversation, and ``interrupt_before=["tools"]`` lets a person approve each batch of tool
calls (see docs/agents.md for approving, rejecting and editing them).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel

from tether.agents._state import AgentState, AgentStateWithStructuredResponse
from tether.graph import StateGraph
from tether.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage, ToolMessage, convert_to_messages
from tether.tools import Tool, ToolNode
from tether.types import END, START

__all__ = ["create_react_agent", "pending_tool_calls"]

Prompt = str | SystemMessage | Callable[[Any], Any] | Any
ResponseFormat = type[BaseModel] | tuple[str, type[BaseModel]]


def _get(state: Any, key: str, default: Any = None) -> Any:
    return state.get(key, default) if isinstance(state, dict) else getattr(state, key, default)


def pending_tool_calls(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The tool calls of the last AIMessage that no later ToolMessage answers yet."""
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, AIMessage):
            answered = {m.tool_call_id for m in messages[i + 1 :] if isinstance(m, ToolMessage)}
            return [dict(c) for c in message.tool_calls if c.get("id") not in answered]
    return []


def _check_history(messages: Sequence[BaseMessage]) -> None:
    """Every tool call needs its result before the model is called again; chat APIs reject it otherwise."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    dangling = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls if c.get("id") not in answered]
    if dangling:
        shown = ", ".join(f"{c.get('name')}(id={c.get('id')!r})" for c in dangling[:3])
        raise ValueError(
            f"the conversation has tool calls without a ToolMessage answering them: {shown}. Every tool call "
            "needs a result before the model is called again; to reject one, add "
            "ToolMessage(content='<why>', tool_call_id=<its id>, name=<tool>, status='error') with "
            "update_state(config, {'messages': [...]}, as_node='tools')"
        )


def _prompt_runner(prompt: Prompt | None) -> Callable[[Any], list[BaseMessage]]:
    """The messages sent to the model for a state, as LangGraph's ``prompt`` argument defines them."""
    if prompt is None:
        return lambda state: list(_get(state, "messages"))
    if isinstance(prompt, str):
        system = SystemMessage(content=prompt)
        return lambda state: [system, *_get(state, "messages")]
    if isinstance(prompt, SystemMessage):
        return lambda state: [prompt, *_get(state, "messages")]
    if callable(prompt):
        return lambda state: convert_to_messages(prompt(state))
    if callable(getattr(prompt, "invoke", None)):  # a ChatPromptTemplate, say
        return lambda state: convert_to_messages(prompt.invoke(state))
    raise TypeError(
        f"prompt must be a string, a SystemMessage, a function of the state or a prompt template, got {prompt!r}"
    )


def _with_call_ids(reply: AIMessage, name: str | None) -> AIMessage:
    """Give every tool call an id (some models and scripts leave it out) so its result can answer it,
    and the reply an id of its own, fixed when it is written, so a person can replace it by id later."""
    update: dict[str, Any] = {} if reply.id else {"id": str(uuid.uuid4())}
    if any(not c.get("id") for c in reply.tool_calls):
        update["tool_calls"] = [
            {**c, "id": c.get("id") or f"call_{uuid.uuid4().hex[:24]}", "type": "tool_call"} for c in reply.tool_calls
        ]
    if name is not None:
        update["name"] = name
    return reply.model_copy(update=update) if update else reply


def _bound_model(model: Any, tools: list[Any]) -> Any:
    if not tools:
        return model
    already = getattr(getattr(model, "options", None), "tools", ())
    if already:
        bound_names = {t.get("function", t).get("name") for t in already}
        missing = {t.name for t in tools if isinstance(t, Tool)} - bound_names
        if missing:
            raise ValueError(f"the model was bound to tools without {sorted(missing)}; bind all of them or none")
        return model
    if not callable(getattr(model, "bind_tools", None)):
        raise TypeError(f"the model {model!r} cannot be offered tools: it has no bind_tools()")
    return model.bind_tools(tools)


def _keys(schema: Any) -> set[str]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return set(schema.model_fields)
    try:
        return set(get_type_hints(schema))
    except Exception:
        return set(getattr(schema, "__annotations__", {}))


def _with_llm_input(schema: Any) -> Any:
    """The state plus ``llm_input_messages``, where a pre_model_hook may put what the model sees."""
    if "llm_input_messages" in _keys(schema):
        return schema
    if not (isinstance(schema, type) and issubclass(schema, dict)):
        raise TypeError("pre_model_hook needs a TypedDict state_schema (it adds an llm_input_messages key)")

    class WithModelInput(schema, total=False):  # type: ignore[misc, call-arg]
        llm_input_messages: list[AnyMessage]

    return WithModelInput


def create_react_agent(
    model: Any,
    tools: Sequence[Tool | Callable[..., Any] | dict[str, Any]] | ToolNode,
    *,
    prompt: Prompt | None = None,
    response_format: ResponseFormat | None = None,
    pre_model_hook: Callable[[Any], Any] | None = None,
    state_schema: Any = None,
    context_schema: Any = None,
    checkpointer: Any = None,
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
    name: str | None = None,
    version: Literal["v1", "v2"] = "v2",
    debug: bool = False,
) -> Any:
    """A tool-calling agent graph, with LangGraph's ``create_react_agent`` signature.

    * ``model``: a chat model (``init_chat_model(...)``) or a ``"provider:model"`` string;
      it is offered ``tools`` with ``bind_tools`` unless it already was.
    * ``tools``: ``@tool`` functions, plain typed functions, or a ready ``ToolNode``.
    * ``prompt``: a system prompt string or ``SystemMessage`` put before the conversation, a
      function of the state returning the messages to send, or a prompt template.
    * ``response_format``: a pydantic model (or ``(system_prompt, model)``); after the last
      answer the model is asked once more for that structure, stored in ``structured_response``.
    * ``pre_model_hook``: a node run before each model call; it may rewrite ``messages`` (say,
      summarise them) or return ``llm_input_messages`` to send instead of ``messages``.
    * ``checkpointer``, ``interrupt_before``/``interrupt_after`` (node names ``"agent"``,
      ``"tools"``), ``name``: as for ``StateGraph.compile``.

    ``version`` is accepted for compatibility; either way the calls of one reply run together
    in one ``tools`` step.
    """
    if version not in ("v1", "v2"):
        raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
    if isinstance(model, str):
        from tether.models import init_chat_model

        model = init_chat_model(model)
    if isinstance(tools, ToolNode):
        tool_node: ToolNode | None = tools
        offered: list[Any] = list(tools.tools_by_name.values())
    else:
        runnable = [t for t in tools if not isinstance(t, dict)]
        tool_node = ToolNode(runnable) if runnable else None
        offered = [*(tool_node.tools_by_name.values() if tool_node else ()), *(t for t in tools if isinstance(t, dict))]
    bound = _bound_model(model, offered)
    build_prompt = _prompt_runner(prompt)
    return_direct = {t.name for t in (tool_node.tools_by_name.values() if tool_node else ()) if t.return_direct}

    schema = state_schema or (AgentStateWithStructuredResponse if response_format is not None else AgentState)
    if "messages" not in _keys(schema):
        raise ValueError("state_schema must have a 'messages' key (subclass tether.agents.AgentState)")
    if response_format is not None and "structured_response" not in _keys(schema):
        raise ValueError("with response_format, state_schema needs a 'structured_response' key")
    if pre_model_hook is not None:
        schema = _with_llm_input(schema)

    def agent(state: Any) -> dict[str, Any]:
        messages = (_get(state, "llm_input_messages") if pre_model_hook else None) or _get(state, "messages")
        if messages is None:
            raise ValueError("the agent's state has no 'messages'")
        _check_history(messages)
        view = {**state, "messages": list(messages)} if isinstance(state, dict) else state
        reply = bound.invoke(build_prompt(view))
        if not isinstance(reply, AIMessage):
            raise TypeError(f"the model returned {type(reply).__name__}, expected an AIMessage")
        return {"messages": [_with_call_ids(reply, name)]}

    def generate_structured_response(state: Any) -> dict[str, Any]:
        assert response_format is not None
        messages: list[Any] = list(_get(state, "messages"))
        structure = response_format
        if isinstance(structure, tuple):
            system, structure = structure
            messages = [SystemMessage(content=system), *messages]
        return {"structured_response": model.with_structured_output(structure).invoke(messages)}

    finish = "generate_structured_response" if response_format is not None else END

    def after_agent(state: Any) -> str:
        if tool_node is not None and pending_tool_calls(_get(state, "messages")):
            return "tools"
        return finish

    def after_tools(state: Any) -> str:
        messages = _get(state, "messages")
        if pending_tool_calls(messages):
            return "tools"  # a person answered some calls with update_state(as_node="tools"); run the rest
        results = []
        for message in reversed(messages):
            if not isinstance(message, ToolMessage):
                break
            results.append(message)
        if any(m.name in return_direct for m in results):
            return END
        return entry

    graph = StateGraph(schema, context_schema)
    entry = "agent"
    if pre_model_hook is not None:
        graph.add_node("pre_model_hook", pre_model_hook)
        graph.add_edge("pre_model_hook", "agent")
        entry = "pre_model_hook"
    graph.add_node("agent", agent)
    graph.add_edge(START, entry)
    if response_format is not None:
        graph.add_node("generate_structured_response", generate_structured_response)
        graph.add_edge("generate_structured_response", END)
    if tool_node is None:
        graph.add_edge("agent", finish)
    else:
        graph.add_node("tools", tool_node)
        graph.add_conditional_edges("agent", after_agent, ["tools", finish])
        graph.add_conditional_edges("tools", after_tools, ["tools", entry, END])
    return graph.compile(
        checkpointer=checkpointer,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
        debug=debug,
        name=name,
    )
