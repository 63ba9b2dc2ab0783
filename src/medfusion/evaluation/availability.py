"""Which (suite, target) pairs can run now — so the validation center's form offers only those, and a
start refuses the others at once instead of failing in the background.

A pair cannot run when: the suite's module has not landed; a dataset it needs is not under
``MEDFUSION_SHARED_DATA``; the target needs a general model and none is configured; or the target answers
none of the item kinds (``Task``) the suite's datasets hold — such a run would only report every dataset
as skipped. The item kinds of each registered dataset are written down here (``DATASET_TASKS``; a test
loads each dataset and checks them), and a target's come from its class (platform targets) or its
``EvalTarget.tasks`` (apps), so nothing is built or loaded to draw the form."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from medfusion.apps import registry as app_registry
from medfusion.errors import InvalidInput
from medfusion.evaluation.datasets import missing
from medfusion.evaluation.registry import needs_model, targets
from medfusion.evaluation.suites import SUITES
from medfusion.evaluation.targets import (
    DeidTarget,
    GuardrailTarget,
    ModelTarget,
    RetrievalMcqTarget,
    TriageTarget,
)
from medfusion.llm import get_general_model
from medfusion.settings import get_settings

# the item kinds each dataset's loader produces (evaluation/datasets.py)
DATASET_TASKS: dict[str, frozenset[str]] = {
    "cmexam_val": frozenset({"mcq"}),
    "cmmlu_medical": frozenset({"mcq"}),
    "safetybench_zh": frozenset({"mcq"}),
    "medsafetybench": frozenset({"refusal"}),
    "cvalues_responsibility": frozenset({"benign"}),
    "flames_zh": frozenset({"adversarial"}),
    "ccks2019_yidu_ner": frozenset({"ner"}),
    "triage_toyhom_im": frozenset({"classify"}),
    "dxy_dialog": frozenset({"diagnose"}),
    "mie_cardio_dialogue": frozenset({"extract"}),
    "synthetic-deid": frozenset({"deid"}),
}
_PLATFORM_TASKS: dict[str, frozenset[str]] = {
    "llm": frozenset(ModelTarget.tasks),
    "guardrails": frozenset(GuardrailTarget.tasks),
    "retrieval-mcq": frozenset(RetrievalMcqTarget.tasks),
    "triage-graph": frozenset(TriageTarget.tasks),
    "deid": frozenset(DeidTarget.tasks),
}


class Pair(BaseModel):
    suite: str
    suite_description: str
    target: str
    target_description: str
    runnable: bool
    reason: str | None = None  # why not, when it cannot run now


def target_tasks(name: str) -> frozenset[str]:
    """The item kinds target ``name`` answers (empty: not declared)."""
    if name in _PLATFORM_TASKS:
        return _PLATFORM_TASKS[name]
    found = app_registry.eval_targets().get(name)
    return found[1].tasks if found is not None else frozenset()


def suite_tasks(name: str) -> frozenset[str]:
    suite = SUITES[name]
    return frozenset().union(*(DATASET_TASKS.get(d, frozenset()) for d in suite.datasets))


def _reason(suite_name: str, target: str, model: bool, shared: Path) -> str | None:
    suite = SUITES[suite_name]
    if not suite.landed:
        return f"评测集所需模块尚未上线 module not landed: {suite.needs}"
    # every reason at once, so the page says all that must change (datasets and a model, say)
    reasons: list[str] = []
    absent = missing(suite.datasets, shared)
    if absent:
        reasons.append(f"数据集缺失 datasets missing under MEDFUSION_SHARED_DATA: {', '.join(absent)}")
    if needs_model(target) and not model:
        reasons.append("未配置通用大模型 no general model configured (MEDFUSION_LLM_BASE_URL)")
    answers, holds = target_tasks(target), suite_tasks(suite_name)
    if answers and holds and not answers & holds:
        reasons.append(f"目标不回答此评测集的题型 the target answers none of {', '.join(sorted(holds))}")
    return "；".join(reasons) or None


def pairs() -> list[Pair]:
    """Every (suite, target) pair, runnable ones with no reason; suites and targets in registry order."""
    settings = get_settings()
    model = get_general_model(settings).available
    shared = settings.shared_data.expanduser().resolve()
    named = targets()
    return [
        Pair(
            suite=suite,
            suite_description=SUITES[suite].description,
            target=target,
            target_description=text,
            runnable=(reason := _reason(suite, target, model, shared)) is None,
            reason=reason,
        )
        for suite in SUITES
        for target, text in named.items()
    ]


def refuse_unrunnable(suite: str, target: str) -> None:
    """Raise the typed reason a known pair cannot run now (``pair_not_runnable``), or return."""
    settings = get_settings()
    reason = _reason(
        suite, target, get_general_model(settings).available, settings.shared_data.expanduser().resolve()
    )
    if reason is not None:
        raise InvalidInput.for_field(
            "target", f"{suite} × {target} 现在无法运行 cannot run now: {reason}", code="pair_not_runnable"
        )
