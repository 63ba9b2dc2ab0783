"""Prompts are versioned template files (``prompts/*.toml``), not strings in code.

Each file names its id and version and holds the parts the report's prompt engineering lists (chapter 1,
二.(四)): a role (角色设定), instructions with context injection (上下文注入), an output format (格式要求),
few-shot examples (小样本学习), and, where it helps, a chain-of-thought instruction (思维链, 二.(五)) that
callers switch on per task. Bodies are Jinja2 with strict undefined variables, so a missing context value
fails loudly in tests instead of sending a prompt with a hole in it. Every output that used a prompt
records ``id@version`` in its provenance.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from pydantic import BaseModel, Field

from medfusion import packaged
from medfusion.llm.messages import Message

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


class Example(BaseModel):
    user: str
    assistant: str


class PromptTemplate(BaseModel):
    id: str
    version: str
    description: str
    role: str
    instructions: str
    output_format: str = ""
    chain_of_thought: str = ""
    user: str
    few_shot: list[Example] = Field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def render(self, *, reasoning: str = "direct", **context: Any) -> list[Message]:
        """System turn (role, instructions, CoT when asked, output format), the examples, the user turn."""
        parts = [self.role, _ENV.from_string(self.instructions).render(**context)]
        if reasoning == "cot" and self.chain_of_thought:
            parts.append(self.chain_of_thought)
        if self.output_format:
            parts.append(_ENV.from_string(self.output_format).render(**context))
        messages = [Message(role="system", content="\n\n".join(p.strip() for p in parts if p.strip()))]
        for example in self.few_shot:
            messages.append(Message(role="user", content=example.user.strip()))
            messages.append(Message(role="assistant", content=example.assistant.strip()))
        messages.append(Message(role="user", content=_ENV.from_string(self.user).render(**context).strip()))
        return messages


@lru_cache(maxsize=64)
def prompt(name: str) -> PromptTemplate:
    """The template ``prompts/<name>.toml`` shipped with the package."""
    template = PromptTemplate.model_validate(packaged.toml("medfusion.llm", "prompts", f"{name}.toml"))
    if template.id != name:
        raise ValueError(f"prompt file {name}.toml declares id {template.id!r}")
    return template


def available() -> list[str]:
    folder = resources.files("medfusion.llm").joinpath("prompts")
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))
