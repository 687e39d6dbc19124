"""Output parsers: a model's text reply turned into a string or a validated pydantic object."""

from __future__ import annotations

import json
import re
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from tether.messages import BaseMessage, message_text
from tether.models import OutputParserError
from tether.prompts._chain import Pipeable

__all__ = ["PydanticOutputParser", "StrOutputParser"]

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)

_INSTRUCTIONS = """\
Answer with a JSON object that conforms to the JSON schema below, and nothing else.

For example, for the schema {{"properties": {{"foo": {{"type": "array", "items": {{"type": "string"}}}}}}, \
"required": ["foo"]}} the object {{"foo": ["bar", "baz"]}} is a well-formatted answer; the object \
{{"properties": {{"foo": ["bar", "baz"]}}}} is not.

Here is the schema:
```
{schema}
```"""


def _text(value: Any) -> str:
    return message_text(value) if isinstance(value, BaseMessage) else str(value)


class StrOutputParser(Pipeable):
    """The reply's text (``model | StrOutputParser()`` returns a string)."""

    def parse(self, text: str) -> str:
        return text

    def invoke(self, input: Any, config: Any = None) -> str:
        return _text(input)

    async def ainvoke(self, input: Any, config: Any = None) -> str:
        return _text(input)


class PydanticOutputParser(Pipeable, Generic[M]):
    """Parse a reply into ``pydantic_object``; put ``get_format_instructions()`` in the prompt.

    ``parse`` accepts the JSON bare, inside a ```json fence, or surrounded by prose. When it
    does not validate, ``OutputParserError`` names every field that failed and why (fit to
    send back to the model for another try); ``.errors`` holds them as data.
    """

    def __init__(self, pydantic_object: type[M]) -> None:
        if not (isinstance(pydantic_object, type) and issubclass(pydantic_object, BaseModel)):
            raise TypeError(f"PydanticOutputParser needs a pydantic model class, got {pydantic_object!r}")
        self.pydantic_object = pydantic_object

    def get_format_instructions(self) -> str:
        schema = dict(self.pydantic_object.model_json_schema())
        schema.pop("title", None)  # the example in the instructions has neither; keep the model focused
        schema.pop("type", None)
        return _INSTRUCTIONS.format(schema=json.dumps(schema, ensure_ascii=False))

    def parse(self, text: str) -> M:
        name = self.pydantic_object.__name__
        candidate = _json_candidate(text)
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError as exc:
            error = OutputParserError(
                f"the reply is not valid JSON for {name}: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                f"reply was {text[:200]!r}"
            )
            error.llm_output = text  # type: ignore[attr-defined]
            error.errors = []  # type: ignore[attr-defined]
            raise error from exc
        try:
            return self.pydantic_object.model_validate(data)
        except ValidationError as exc:
            problems = [_problem(e) for e in exc.errors()]
            error = OutputParserError(
                f"the reply does not match {name}: {len(problems)} field(s) failed: {'; '.join(problems)}"
            )
            error.llm_output = text  # type: ignore[attr-defined]
            error.errors = [dict(e) for e in exc.errors()]  # type: ignore[attr-defined]
            raise error from exc

    def invoke(self, input: Any, config: Any = None) -> M:
        return self.parse(_text(input))

    async def ainvoke(self, input: Any, config: Any = None) -> M:
        return self.invoke(input)

    @property
    def OutputType(self) -> type[M]:  # noqa: N802 - LangChain's name
        return self.pydantic_object


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "(the whole object)"
    text = f"{where}: {error.get('msg', 'invalid')}"
    if error.get("type") != "missing" and "input" in error:
        text += f" (got {error['input']!r})"
    return text


def _json_candidate(text: str) -> str:
    """The JSON inside a reply: a fenced block if there is one, else the outermost {...} or [...]."""
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    stripped = text.strip()
    if stripped[:1] in "{[":
        return stripped
    starts = [i for i in (stripped.find("{"), stripped.find("[")) if i >= 0]
    if not starts:
        return stripped
    start = min(starts)
    end = stripped.rfind("}" if stripped[start] == "{" else "]")
    return stripped[start : end + 1] if end > start else stripped
