"""The agent runtime: an agent is a role, a set of tools, optional memory and budgets, run in a
tool-calling loop with the general model (系统协作, chapter 1 二.(七)). Every step is traced.

Without a model — none configured, or it fails mid-run — the same agent runs its deterministic plan over
the same tools: its specialist path, weaker and labelled so (``path: specialist`` with the reason in
``fallback``). A run also falls back when the model's answer does not survive the guardrails, so a user
always gets the best answer that is supported, never a crash or an unchecked one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from medfusion.agents.drafting import guard, split_cited
from medfusion.agents.guardrails import Finding, Guardrails
from medfusion.agents.memory import Memory
from medfusion.agents.tools import ToolArgumentError, ToolBox, ToolContext
from medfusion.agents.trace import Step, Trace
from medfusion.contract import AnswerSentence, Evidence, Fallback, Path
from medfusion.errors import MedFusionError
from medfusion.llm import Completion, GeneralModel, Message, Unavailable, prompt

Plan = Callable[[str, ToolContext], list[tuple[str, dict[str, Any]]]]


class Budget(BaseModel):
    max_steps: int = Field(default=6, ge=1, le=30)  # model turns
    max_tool_calls: int = Field(default=10, ge=0, le=100)
    max_tokens: int = Field(default=16_000, ge=100)


class AgentSpec(BaseModel):
    name: str
    role: str  # who the agent is, in the words the model reads (角色设定)
    tools: list[str]
    budget: Budget = Field(default_factory=Budget)
    reasoning: str = "direct"  # direct | cot
    model: str = "default"  # which configured general model


class AgentRun(BaseModel):
    agent: str
    task: str
    sentences: list[AnswerSentence]
    evidence: list[Evidence]
    path: Path
    model: str | None = None
    prompt: str | None = None
    fallback: Fallback | None = None
    stopped: str  # answered | step_budget | token_budget | tool_budget | model_unavailable | specialist
    findings: list[Finding] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    tokens: int = 0


class Agent:
    def __init__(
        self,
        spec: AgentSpec,
        toolbox: ToolBox,
        general: GeneralModel,
        plan: Plan,
        guardrails: Guardrails,
        memory: Memory | None = None,
    ) -> None:
        unknown = [t for t in spec.tools if toolbox.get(t) is None]
        if unknown:
            raise ValueError(f"agent {spec.name}: unknown tools {unknown}")
        self.spec = spec
        self.toolbox = ToolBox(t for name in spec.tools if (t := toolbox.get(name)) is not None)
        self.general = general
        self.plan = plan
        self.guardrails = guardrails
        self.memory = memory

    def run(
        self,
        task: str,
        ctx: ToolContext,
        given: Sequence[str] = (),
        owner: str | None = None,
        session_id: str | None = None,
    ) -> AgentRun:
        """``given`` is what the asker supplied besides the task (e.g. patient context), for grounding.
        With memory and an ``owner``, relevant memories are offered to the model and, with a
        ``session_id``, the exchange is remembered."""
        trace = Trace()
        given = [task, *given]
        recalled: list[str] = []
        if self.memory is not None and owner:
            with trace.step("memory", "recall") as step:
                recalled = [m.line() for m in self.memory.recall(owner, task)]
                step.output = {"recalled": len(recalled)}
        if not self.general.available:
            run = self._specialist(task, ctx, trace, given, fallback=Fallback.no_model)
        else:
            run = self._loop(task, ctx, trace, given, recalled)
        if self.memory is not None and owner and session_id:
            with trace.step("memory", "remember") as step:
                self.memory.add_turn(owner, session_id, "user", task)
                said = "".join(s.text for s in run.sentences)
                step.output = {"new_entries": len(self.memory.add_turn(owner, session_id, "assistant", said))}
            run = run.model_copy(update={"steps": trace.steps})
        return run

    # -- general-model path -----------------------------------------------------------------------
    def _loop(
        self, task: str, ctx: ToolContext, trace: Trace, given: list[str], memory: Sequence[str]
    ) -> AgentRun:
        template = prompt("agent")
        context = (
            task if not memory else task + "\n\n相关记忆 Memory:\n" + "\n".join(f"- {m}" for m in memory)
        )
        messages = template.render(
            reasoning=self.spec.reasoning,
            role=self.spec.role,
            max_steps=self.spec.budget.max_steps,
            task=context,
        )
        budget, calls, final, model = self.spec.budget, 0, None, None
        stopped = "step_budget"
        for turn in range(budget.max_steps):
            if trace.tokens >= budget.max_tokens:
                stopped = "token_budget"
                break
            with trace.step("llm", f"turn {turn + 1}", messages=len(messages)) as step:
                reply = self.general.chat(
                    messages,
                    tools=self.toolbox.specs(),
                    model=self.spec.model,
                    purpose=f"agent:{self.spec.name}",
                )
                if isinstance(reply, Unavailable):
                    step.outcome = reply.reason.value
                    step.output = {"detail": reply.detail}
                else:
                    model = reply.model
                    step.tokens = reply.usage.total_tokens
                    step.output = {"text": reply.text, "tool_calls": [c.name for c in reply.tool_calls]}
            if isinstance(reply, Unavailable):
                return self._specialist(task, ctx, trace, given, fallback=Fallback(reply.reason.value))
            if not reply.tool_calls:
                final, stopped = reply, "answered"
                break
            messages.append(Message(role="assistant", content=reply.text, tool_calls=reply.tool_calls))
            for call in reply.tool_calls:
                calls += 1
                if calls > budget.max_tool_calls:
                    content = "工具调用次数已用完，请根据已有证据作答 tool budget exhausted"
                else:
                    content = self._tool(call.name, call.arguments, ctx, trace)
                messages.append(Message(role="tool", tool_call_id=call.id, name=call.name, content=content))
        if final is None:
            return self._specialist(task, ctx, trace, given, fallback=Fallback(stopped))
        return self._finish(final, task, ctx, trace, given, model, template.ref)

    def _tool(self, name: str, arguments: str | dict[str, Any], ctx: ToolContext, trace: Trace) -> str:
        tool = self.toolbox.get(name)
        with trace.step(
            "tool",
            name,
            arguments=arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False),
        ) as step:
            if tool is None:
                step.outcome = "unknown_tool"
                return f"没有名为 {name} 的工具 unknown tool; available: {', '.join(self.toolbox.tools)}"
            try:
                out = tool.call(arguments, ctx)
            except ToolArgumentError as error:
                step.outcome = "bad_arguments"
                return f"参数错误 invalid arguments: {error}"
            except MedFusionError as error:  # e.g. permission denied on the chart: the model is told why
                step.outcome = error.code
                return f"工具失败 tool failed [{error.code}]: {error.message}"
            step.output = {"content": out.content, "evidence": out.evidence_ids}
            return out.content

    def _finish(
        self,
        final: Completion,
        task: str,
        ctx: ToolContext,
        trace: Trace,
        given: list[str],
        model: str | None,
        prompt_ref: str,
    ) -> AgentRun:
        evidence, quarantined = self.guardrails.quarantine(ctx.book.items)
        with trace.step("guardrail", "after", sentences=final.text) as step:
            guarded, path = guard(self.guardrails, split_cited(final.text), given, evidence)
            step.output = {
                "kept": len(guarded.sentences),
                "drafted": guarded.drafted,
                "findings": [f.code for f in guarded.findings],
            }
        findings = quarantined + guarded.findings
        if not guarded.sentences:
            run = self._specialist(task, ctx, trace, given, fallback=Fallback.guardrail_removed_all)
            return run.model_copy(update={"findings": findings + run.findings, "model": model})
        return AgentRun(
            agent=self.spec.name,
            task=task,
            sentences=guarded.sentences,
            evidence=ctx.book.items,
            path=path,
            model=model,
            prompt=prompt_ref,
            stopped="answered",
            findings=findings,
            steps=trace.steps,
            tokens=trace.tokens,
        )

    # -- specialist path --------------------------------------------------------------------------
    def _specialist(
        self, task: str, ctx: ToolContext, trace: Trace, given: list[str], fallback: Fallback
    ) -> AgentRun:
        with trace.step("plan", "deterministic plan", reason=fallback) as step:
            planned = self.plan(task, ctx)
            step.output = {"calls": [name for name, _ in planned]}
        sentences: list[AnswerSentence] = []
        for name, arguments in planned:
            content = self._tool(name, arguments, ctx, trace)
            sentences += [
                AnswerSentence(text=s.text, citations=s.citations)
                for s in split_cited(content)
                if s.citations
            ]
        unique = list({s.text: s for s in sentences}.values())
        return AgentRun(
            agent=self.spec.name,
            task=task,
            sentences=unique,
            evidence=ctx.book.items,
            path="specialist",
            fallback=fallback,
            stopped="specialist",
            steps=trace.steps,
            tokens=trace.tokens,
        )
