"""Prompt templates, output parsers and chains; the same results as langchain-core where it has them."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core import messages as lc
from langchain_core import prompts as lcp
from langchain_core.output_parsers import PydanticOutputParser as LCPydanticOutputParser
from pydantic import BaseModel, Field

from tether.messages import AIMessage, HumanMessage, SystemMessage
from tether.models import OutputParserError, ScriptedChatModel
from tether.prompts import (
    Chain,
    ChatPromptTemplate,
    MessagesPlaceholder,
    MissingVariableError,
    PromptTemplate,
    PydanticOutputParser,
    StrOutputParser,
)


def test_prompt_template_format_and_variables() -> None:
    prompt = PromptTemplate.from_template("Summarise {text} in {n} words. {{literal}} {text}")
    assert prompt.input_variables == ["n", "text"]
    assert prompt.format(text="this", n=5) == "Summarise this in 5 words. {literal} this"
    assert prompt.partial(n=3).input_variables == ["text"]
    value = prompt.invoke({"text": "a", "n": 1})
    assert value == "Summarise a in 1 words. {literal} a" and value.to_messages()[0].text == value


def test_missing_variable_names_it() -> None:
    prompt = PromptTemplate.from_template("Hello {name}, you are {age}")
    with pytest.raises(MissingVariableError) as info:
        prompt.format(name="Ada")
    assert str(info.value) == "PromptTemplate is missing variable 'age': it needs name, age; got name"
    assert isinstance(info.value, KeyError)  # LangChain raises KeyError too
    with pytest.raises(MissingVariableError, match="variables 'role', 'q'"):
        ChatPromptTemplate.from_messages([("system", "{role}"), ("human", "{q}")]).invoke({})


def test_malformed_templates_are_reported() -> None:
    with pytest.raises(ValueError, match="positional field"):
        PromptTemplate("a {} b")
    with pytest.raises(ValueError, match="malformed template"):
        PromptTemplate("a {b")


def test_chat_prompt_from_messages_with_placeholders() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a {role}."),
            MessagesPlaceholder("history"),
            ("placeholder", "{extra}"),
            ("human", "{question}"),
            AIMessage(content="kept {as is}"),
        ]
    )
    assert prompt.input_variables == ["history", "question", "role"]
    messages = prompt.invoke(
        {"role": "librarian", "history": [("user", "hi"), ("ai", "hello")], "question": "a book?"}
    ).to_messages()
    assert [(m.type, m.text) for m in messages] == [
        ("system", "You are a librarian."),
        ("human", "hi"),
        ("ai", "hello"),
        ("human", "a book?"),
        ("ai", "kept {as is}"),
    ]
    with pytest.raises(MissingVariableError, match="'history'"):
        prompt.format_messages(role="r", question="q")
    optional = ChatPromptTemplate.from_messages([MessagesPlaceholder("h", optional=True), "{q}"])
    assert [m.text for m in optional.format_messages(q="x")] == ["x"]


def test_partial_functions_and_adding_templates() -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Today is {today}.")]).partial(today=lambda: "Monday")
    combined = prompt + ChatPromptTemplate.from_messages([("human", "{q}")])
    assert [m.text for m in combined.format_messages(q="hi")] == ["Today is Monday.", "hi"]
    with pytest.raises(ValueError, match="unknown message role"):
        ChatPromptTemplate.from_messages([("robot", "x")])


class Person(BaseModel):
    """Someone mentioned in the text."""

    name: str = Field(description="full name")
    age: int
    email: str | None = None


def test_pydantic_parser_parses_bare_fenced_and_embedded_json() -> None:
    parser = PydanticOutputParser(Person)
    expected = Person(name="Ada", age=36)
    assert parser.parse('{"name": "Ada", "age": 36}') == expected
    assert parser.parse('Here you go:\n```json\n{"name": "Ada", "age": "36"}\n```\nAnything else?') == expected
    assert parser.parse('Sure! {"name": "Ada", "age": 36} Hope that helps.') == expected
    assert parser.invoke(AIMessage(content='{"name": "Ada", "age": 36}')) == expected


def test_pydantic_parser_reports_exactly_which_fields_failed() -> None:
    parser = PydanticOutputParser(Person)
    with pytest.raises(OutputParserError) as info:
        parser.parse('{"age": "old", "email": 5}')
    message = str(info.value)
    assert message.startswith("the reply does not match Person: 3 field(s) failed:")
    assert "name: Field required" in message
    assert "age: Input should be a valid integer, unable to parse string as an integer (got 'old')" in message
    assert "email: Input should be a valid string (got 5)" in message
    assert [e["loc"] for e in info.value.errors] == [("name",), ("age",), ("email",)]  # type: ignore[attr-defined]
    with pytest.raises(OutputParserError, match="not valid JSON for Person"):
        parser.parse("I do not know")


def test_format_instructions_carry_the_schema() -> None:
    text = PydanticOutputParser(Person).get_format_instructions()
    assert '"name": {"description": "full name"' in text and '"required": ["name", "age"]' in text
    with pytest.raises(TypeError, match="pydantic model class"):
        PydanticOutputParser(dict)  # type: ignore[type-var]


def test_prompt_model_parser_chain() -> None:
    parser = PydanticOutputParser(Person)
    prompt = ChatPromptTemplate.from_messages([("system", "{format}"), ("human", "{text}")]).partial(
        format=parser.get_format_instructions()
    )
    model = ScriptedChatModel(['{"name": "Grace", "age": 85}', "plain"])
    chain = prompt | model | parser
    assert isinstance(chain, Chain) and len(chain.steps) == 3
    assert chain.invoke({"text": "Grace Hopper, 85"}) == Person(name="Grace", age=85)
    assert isinstance(model.calls[0][0], SystemMessage) and model.calls[0][1] == HumanMessage(
        content="Grace Hopper, 85"
    )
    assert (PromptTemplate.from_template("{x}") | model | StrOutputParser()).invoke({"x": "y"}) == "plain"


async def test_chain_ainvoke() -> None:
    model = ScriptedChatModel(["async reply"])
    chain = ChatPromptTemplate.from_template("{q}") | model | StrOutputParser() | str.upper
    assert await chain.ainvoke({"q": "hi"}) == "ASYNC REPLY"


# -- the same results as langchain-core ------------------------------------------------------

TEMPLATES = ["Hello {name}!", "{a}{b} and {a}", "no variables", "braces {{x}} and {y}", "{n:>5}|{y!r}"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_prompt_template_matches_langchain(template: str) -> None:
    values: dict[str, Any] = {"name": "Ada", "a": 1, "b": 2, "y": "Y", "n": 7}
    ours = PromptTemplate.from_template(template)
    theirs = lcp.PromptTemplate.from_template(template)
    assert ours.input_variables == sorted(theirs.input_variables)
    needed = {k: v for k, v in values.items() if k in ours.input_variables}
    assert ours.format(**needed) == theirs.format(**needed)


@pytest.mark.parametrize("template", ["{user.name}", "{items[0]}", "{a.__class__}"])
def test_templates_may_not_reach_into_values_like_langchain(template: str) -> None:
    with pytest.raises(ValueError):
        lcp.PromptTemplate.from_template(template)
    with pytest.raises(ValueError, match="reaches into a value"):
        PromptTemplate.from_template(template)


def test_chat_prompt_matches_langchain() -> None:
    spec = [("system", "You are {role}."), ("placeholder", "{history}"), ("human", "{q}"), ("ai", "ok {q}")]
    values = {"role": "kind", "q": "why?"}
    ours = ChatPromptTemplate.from_messages(spec)
    theirs = lcp.ChatPromptTemplate.from_messages(spec)
    assert ours.input_variables == sorted(theirs.input_variables)
    history_ours = [HumanMessage(content="earlier")]
    history_theirs = [lc.HumanMessage(content="earlier")]
    got = [(m.type, m.text) for m in ours.invoke({**values, "history": history_ours})]
    expected = [(m.type, m.content) for m in theirs.invoke({**values, "history": history_theirs}).to_messages()]
    assert got == expected
    without = [(m.type, m.text) for m in ours.invoke(values)]
    assert without == [(m.type, m.content) for m in theirs.invoke(values).to_messages()]
    with pytest.raises(KeyError):
        theirs.invoke({"role": "x"})
    with pytest.raises(KeyError):
        ours.invoke({"role": "x"})


@pytest.mark.parametrize(
    "text",
    ['{"name": "Ada", "age": 36}', '```json\n{"name": "Ada", "age": 36, "email": "a@b.c"}\n```'],
)
def test_pydantic_parser_matches_langchain(text: str) -> None:
    assert PydanticOutputParser(Person).parse(text) == LCPydanticOutputParser(pydantic_object=Person).parse(text)
