"""Which (suite, target) pairs the validation center offers (issue 16: its form defaulted to exam × llm,
which fails at once with no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medfusion.apps import registry as app_registry
from medfusion.errors import InvalidInput
from medfusion.evaluation import availability
from medfusion.evaluation.datasets import REGISTRY, load
from medfusion.evaluation.registry import targets
from medfusion.evaluation.suites import SUITES
from medfusion.store.database import Database
from tests.conftest import shared_dataset
from tests.fakes.openai_server import FakeOpenAI


def _pair(suite: str, target: str) -> availability.Pair:
    return next(p for p in availability.pairs() if (p.suite, p.target) == (suite, target))


def test_every_suite_and_target_is_listed_once() -> None:
    found = availability.pairs()
    assert len(found) == len(SUITES) * len(targets())
    assert len({(p.suite, p.target) for p in found}) == len(found)
    assert set(availability.DATASET_TASKS) == {*REGISTRY, "synthetic-deid"}


def test_without_a_model_the_model_targets_are_not_offered() -> None:
    llm = _pair("safety", "llm")
    assert not llm.runnable and llm.reason and "未配置通用大模型" in llm.reason
    with pytest.raises(InvalidInput) as refused:
        availability.refuse_unrunnable("safety", "llm")
    assert refused.value.code == "pair_not_runnable"
    assert _pair("deid", "deid").runnable and _pair("deid", "deid").reason is None


def test_a_model_makes_the_model_target_runnable(llm_env: FakeOpenAI) -> None:
    if any("数据集缺失" in (p.reason or "") for p in availability.pairs() if p.suite == "safety"):
        pytest.skip("safety datasets not under MEDFUSION_SHARED_DATA")
    assert _pair("safety", "llm").runnable


def test_a_target_that_answers_none_of_the_suites_items_is_not_offered() -> None:
    mismatch = _pair("deid", "guardrails")
    assert not mismatch.runnable and mismatch.reason and "deid" in mismatch.reason
    assert not _pair("qc", "deid").runnable and "not landed" in str(_pair("qc", "deid").reason)


def test_missing_datasets_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from medfusion.settings import get_settings

    monkeypatch.setenv("MEDFUSION_SHARED_DATA", str(tmp_path / "nowhere"))
    get_settings.cache_clear()
    exam = _pair("exam", "retrieval-mcq")
    assert not exam.runnable and "cmexam_val" in str(exam.reason)
    assert _pair("deid", "deid").runnable  # generated, needs no download


def test_app_targets_declare_the_tasks_their_targets_answer(db: Database) -> None:
    from medfusion.llm import get_general_model
    from medfusion.settings import get_settings

    general = get_general_model(get_settings())
    for name, (_, spec) in app_registry.eval_targets().items():
        assert spec.tasks, f"{name} declares no tasks"
        assert set(spec.build(db, general).tasks) == set(spec.tasks), name


def test_the_generated_deid_set_holds_what_the_table_says() -> None:
    items = load("synthetic-deid", Path("."), limit=3).items
    assert {i.task for i in items} == availability.DATASET_TASKS["synthetic-deid"]


@pytest.mark.dataset
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_registered_dataset_holds_the_tasks_the_table_says(name: str) -> None:
    folder = shared_dataset(REGISTRY[name][0])
    items = load(name, folder.parent, limit=200).items
    assert {i.task for i in items} == availability.DATASET_TASKS[name]
