"""Agents: the runtime (tools, memory, budgets, traces), guardrails, intent, reasoning strategies and the
platform's one question entry, ``ask``."""
