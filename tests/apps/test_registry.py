"""The app registry: an app registered at run time shows up in every surface — its route, its command, its
evaluation target and its write-back — without a surface file changing; a malformed ``APP`` stops start-up
naming the app and the field; and the one contract test's check fails for an app that breaks the contract."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

import medfusion.apps
from medfusion.agents.fusion import (
    FusionApp,
    FusionOutput,
    FusionRun,
    FusionService,
    Outcome,
    SpecialistAnswer,
    render,
)
from medfusion.api.app import create_app
from medfusion.apps import registry
from medfusion.apps.deps import DB, CurrentPrincipal, General, Knowledge, KnowledgeGraph
from medfusion.apps.spec import AppSpec, EvalTarget, EventSubscriber, Example, WriteBack
from medfusion.cli.main import main
from medfusion.contract import AnswerSentence, Confidence
from medfusion.contract.evaluation import Item, Prediction, Task, timed
from medfusion.errors import InvalidAppSpec
from medfusion.evaluation import registry as targets
from medfusion.settings import get_settings
from medfusion.store.access import Permission, system_principal
from medfusion.store.database import Database
from medfusion.store.event_dispatch import subscribers
from medfusion.store.events import RecordEvent
from medfusion.store.patient_service import PatientService
from medfusion.synth import generate_population
from tests.apps.test_contract import _check
from tests.conftest import PackedClient


class EchoRequest(BaseModel):
    text: str = Field(min_length=1, max_length=200)
    patient_id: str | None = None


class EchoResult(FusionOutput):
    text: str


@dataclass
class _Echo(SpecialistAnswer):
    pass


class EchoApp(FusionApp[EchoRequest, _Echo, EchoResult]):
    """A tiny fusion app: it restates the text as one cited sentence."""

    name = "echo_demo"
    engine = "test: echo"

    def subject(self, request: EchoRequest) -> str:
        return request.text

    def patient_id(self, request: EchoRequest) -> str | None:
        return request.patient_id

    def specialist(self, run: FusionRun, request: EchoRequest) -> _Echo:
        ident = run.book.add("rule", f"回声：{request.text}", "test")
        return _Echo(
            sentences=[AnswerSentence(text=f"您说的是：{request.text}。", citations=[ident])],
            confidence=Confidence(value=0.9, method="test: fixed"),
        )

    def output(
        self, run: FusionRun, request: EchoRequest, answer: _Echo, outcome: Outcome, fields: dict[str, Any]
    ) -> EchoResult:
        return EchoResult(**fields, answer=render(outcome.sentences), text=request.text)

    def refused(self, request: EchoRequest, fields: dict[str, Any]) -> EchoResult:
        return EchoResult(**fields, text=request.text)


router = APIRouter(prefix="/api", tags=["echo"])


def _service(
    db: DB, principal: CurrentPrincipal, general: General, kb: Knowledge, graph: KnowledgeGraph
) -> FusionService:
    return FusionService(db, principal, general, kb, graph)


@router.post("/echo-demo", response_model=EchoResult)
def echo(service: Annotated[FusionService, Depends(_service)], request: EchoRequest) -> EchoResult:
    return service.pipeline.run(EchoApp(service), request)


def echo_command(text: str) -> None:
    """回声 Echo the text."""
    typer.echo(f"echo:{text}")


class EchoTarget:
    name = "echo-demo"
    kind = "app"
    tasks: frozenset[Task] = frozenset({"benign"})

    def predict(self, item: Item) -> Prediction:
        return timed(item, time.perf_counter(), output=item.prompt, path="specialist")


SEEN: list[RecordEvent] = []


ECHO = AppSpec(
    name="echo_demo",
    title="回声演示",
    router=router,
    output=EchoResult,
    examples=(Example(title="回声", path="/api/echo-demo", body={"text": "你好"}, subject="text"),),
    cli=echo_command,
    eval_targets=(EvalTarget(name="echo-demo", description="回声 echo", build=lambda db, g: EchoTarget()),),
    write_back=WriteBack(title="回声记录"),
    permissions=(Permission.draft_review,),
    subscribers=(EventSubscriber(name="echo-demo-events", handle=SEEN.append),),
)


@pytest.fixture
def echo_registered() -> Iterator[AppSpec]:
    registry.register(ECHO)
    SEEN.clear()
    yield ECHO
    registry.unregister(ECHO.name)
    subscribers.unregister("echo-demo-events")


def test_an_apps_subscriber_receives_record_events_in_the_serving_process(
    echo_registered: AppSpec, packed_db: Database, packed_client: PackedClient
) -> None:
    with TestClient(create_app(get_settings())):
        chart = PatientService(packed_db, system_principal()).create(
            next(iter(generate_population(1, seed=8)))
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(e.patient == chart.patient.id for e in SEEN):
            time.sleep(0.1)
    mine = [e for e in SEEN if e.patient == chart.patient.id]
    assert mine and mine[0].type == "patient.created"
    assert {e.resource.split("/")[0] for e in mine} >= {"Patient", "Encounter"}


def test_events_dispatch_once_delivers_to_the_installed_apps_subscribers(
    echo_registered: AppSpec, packed_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = PatientService(packed_db, system_principal()).create(next(iter(generate_population(1, seed=9))))
    with pytest.raises(SystemExit) as done:
        main(["events", "dispatch", "--once"])
    report = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and "echo-demo-events" in report["subscribers"] and report["delivered"] >= 1
    assert any(e.patient == chart.patient.id for e in SEEN)


def test_a_registered_app_appears_on_every_surface(
    echo_registered: AppSpec,
    packed_db: Database,
    packed_client: PackedClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert registry.get("echo_demo") is echo_registered
    # route: the app built after registration serves it, under the same auth and contract
    with TestClient(create_app(get_settings())) as client:
        doctor = packed_client.headers("doctor")
        chart = PatientService(packed_db, system_principal()).create(
            next(iter(generate_population(1, seed=5)))
        )
        response = client.post(
            "/api/echo-demo", headers=doctor, json={"text": "你好", "patient_id": chart.patient.id}
        )
        assert response.status_code == 200, response.text
        output = _check(ECHO, response.json())
        assert (
            output.provenance.engine == "test: echo" and output.status.value == "needs_clinician_confirmation"
        )
        assert client.post("/api/echo-demo", json={"text": "你好"}).status_code == 401
        # write-back: the confirmed draft becomes a chart document titled by the app
        accepted = client.post(
            "/api/feedback", headers=doctor, json={"run_id": output.run_id, "action": "accept"}
        )
        assert accepted.status_code == 201 and accepted.json()["note_id"]
    notes = PatientService(packed_db, system_principal()).chart(chart.patient.id).notes
    assert [n.title for n in notes if n.id == accepted.json()["note_id"]] == ["回声记录"]
    # command
    with pytest.raises(SystemExit) as done:
        main(["echo-demo", "早上好"])
    assert done.value.code == 0 and "echo:早上好" in capsys.readouterr().out
    # evaluation target
    assert targets.targets()["echo-demo"] == "回声 echo"
    built = targets.build("echo-demo")
    assert built.name == "echo-demo"


def test_an_unregistered_app_is_gone_again(packed_client: PackedClient) -> None:
    assert registry.get("echo_demo") is None
    with TestClient(create_app(get_settings())) as client:
        assert client.post("/api/echo-demo", json={"text": "x"}).status_code == 404
    assert "echo-demo" not in targets.targets()


def test_the_contract_check_fails_for_an_app_that_cites_what_it_does_not_carry(
    echo_registered: AppSpec,
) -> None:
    broken = {
        "run_id": "r1",
        "evidence": [],
        "confidence": {"value": 0.5, "method": "x"},
        "provenance": {"path": "specialist", "engine": "test"},
        "status": "needs_clinician_confirmation",
        "warnings": [],
        "answer": "x",
        "sentences": [{"text": "x", "citations": ["K9"]}],
        "text": "x",
    }
    with pytest.raises(AssertionError, match="every citation resolves"):
        _check(ECHO, broken)
    with pytest.raises(ValueError):
        _check(ECHO, {**broken, "sentences": [], "warnings": [{"code": "made_up", "message": "m"}]})


@pytest.mark.parametrize(
    ("candidate", "field"),
    [
        ({"name": "broken_app", "title": 3}, "APP.title"),
        ({"name": "broken_app", "title": "坏应用", "router": "not a router"}, "APP.router"),
        ({"name": "broken_app", "title": "坏应用", "colour": "red"}, "APP.colour"),
        ({"name": "other", "title": "坏应用"}, "APP.name"),
        (None, "APP"),
    ],
)
def test_a_malformed_app_names_the_app_and_the_field(candidate: Any, field: str) -> None:
    with pytest.raises(InvalidAppSpec) as error:
        registry.validate("broken_app", candidate)
    assert error.value.message.startswith(f"app broken_app: {field}")


def test_a_malformed_installed_app_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "broken_app"
    package.mkdir()
    (package / "__init__.py").write_text(
        "APP = {'name': 'broken_app', 'title': '坏', 'eval_targets': [{'name': 'x'}]}\n", encoding="utf-8"
    )
    monkeypatch.setattr(medfusion.apps, "__path__", [*medfusion.apps.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_installed", None)
    monkeypatch.delitem(sys.modules, "medfusion.apps.broken_app", raising=False)
    with pytest.raises(InvalidAppSpec, match=r"^app broken_app: APP\.title"):
        registry.apps()
    with pytest.raises(InvalidAppSpec, match="broken_app"):
        create_app(get_settings())
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 2 and "app broken_app: APP.title" in capsys.readouterr().err
    monkeypatch.setattr(registry, "_installed", None)


def test_two_apps_cannot_claim_one_command() -> None:
    twin = ECHO.model_copy(update={"name": "echo_twin", "eval_targets": ()})
    registry.register(ECHO)
    try:
        with pytest.raises(InvalidAppSpec, match="command echo-demo"):
            registry.register(twin.model_copy(update={"command": "echo-demo"}))
            registry.apps()
    finally:
        registry.unregister("echo_twin")
        registry.unregister(ECHO.name)
    assert json.dumps(sorted(s.name for s in registry.apps()))
