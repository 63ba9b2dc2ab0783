"""General model access (the "general" half of general–specialist fusion). Imports nothing above it."""

from medfusion.llm.client import DEFAULT, GeneralModel, Structured, get_general_model
from medfusion.llm.messages import Completion, Delta, Message, Reason, Reply, ToolCall, ToolSpec, Unavailable
from medfusion.llm.prompts import PromptTemplate, prompt

__all__ = [
    "DEFAULT",
    "Completion",
    "Delta",
    "GeneralModel",
    "Message",
    "PromptTemplate",
    "Reason",
    "Reply",
    "Structured",
    "ToolCall",
    "ToolSpec",
    "Unavailable",
    "get_general_model",
    "prompt",
]
