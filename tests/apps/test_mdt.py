"""MDT: case parsing (chart and FHIR Bundle), the specialty pool and solo/team routing, the weighted Borda
consensus, conflicts as warnings, self-correction, the model path, minutes, API and CLI, and the planted
conflict evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks import mdt_eval
from fastapi.testclient import TestClient

from medfusion.apps.mdt import pool
from medfusion.apps.mdt.consensus import borda
from medfusion.apps.mdt.models import MdtRequest, Option, SpecialtyView
from medfusion.apps.mdt.service import MdtService
from medfusion.graph import Graph
from medfusion.interop.fhir import chart_to_bundle
from medfusion.record.models import PatientChart
from medfusion.store.access import Principal, system_principal
from medfusion.store.database import Database
from medfusion.store.patient_service import PatientService
from medfusion.synth import generate_population
from tests.cli.test_cli import run
from tests.conftest import PackedClient
from tests.fakes.openai_server import FakeOpenAI, general_model

DOCTOR = Principal("dr_mdt", "doctor")
AF_PLAN = {
    "conditions": ["心房颤动", "2型糖尿病", "慢性肾脏病"],
    "drugs": ["华法林", "二甲双胍", "布洛芬"],
    "allergies": ["青霉素"],
}


def _chart(db: Database, plan: dict[str, list[str]]) -> PatientChart:
    template = next(iter(generate_population(1, seed=41)))
    return mdt_eval.chart_for(Graph(db), template, plan)


def _service(db: Database, tmp_path: Path, server: FakeOpenAI | None = None) -> MdtService:
    return MdtService(db, DOCTOR, general_model(server, tmp_path / "v"))


def test_a_complex_case_goes_to_a_team_and_the_conflict_is_a_warning(
    packed_db: Database, tmp_path: Path
) -> None:
    chart = _chart(packed_db, AF_PLAN)
    result = _service(packed_db, tmp_path).consult_chart(chart, MdtRequest(bundle={"resourceType": "Bundle"}))
    labels = [v.label for v in result.specialties]
    assert result.routing == "team" and {"心血管内科", "内分泌科", "肾内科", "临床药学"} <= set(labels)
    warning = next(w for w in result.warnings if w.code == "drug_conflict" and "布洛芬" in w.message)
    assert "华法林" in warning.message and warning.severity == "high" and "—属于→" in warning.message
    assert result.consensus and [c.points for c in result.consensus] == sorted(
        (c.points for c in result.consensus), reverse=True
    )
    ids = {e.id for e in result.evidence}
    assert all(set(c.citations) <= ids and c.citations for c in result.consensus)
    assert result.provenance.path == "specialist" and result.provenance.fallback == "no_model"
    assert result.status.value == "needs_clinician_confirmation"
    for heading in ("## 心血管内科", "## 共识", "## 用药冲突", "## 证据"):
        assert heading in result.minutes


def test_the_same_case_gets_the_same_evidence_ids_on_every_run(packed_db: Database, tmp_path: Path) -> None:
    """The team's specialties share one evidence book; its ids (K1, G1, …) must not depend on which thread
    finished first, or minutes and citations of two runs of one case could not be compared."""
    chart = _chart(packed_db, AF_PLAN)
    runs = [
        _service(packed_db, tmp_path).consult_chart(chart, MdtRequest(bundle={"resourceType": "Bundle"}))
        for _ in range(3)
    ]
    books = [[(e.id, e.kind, e.text) for e in r.evidence] for r in runs]
    assert len(books[0]) > 4 and books[1] == books[0] and books[2] == books[0]
    cited = [[(v.label, [o.citations for o in v.options]) for v in r.specialties] for r in runs]
    assert cited[1] == cited[0] and cited[2] == cited[0]


def test_a_chart_without_a_birth_date_says_the_age_is_unknown(packed_db: Database, tmp_path: Path) -> None:
    chart = _chart(packed_db, AF_PLAN)
    chart = chart.model_copy(update={"patient": chart.patient.model_copy(update={"birth_date": None})})
    result = _service(packed_db, tmp_path).consult_chart(chart, MdtRequest(bundle={"resourceType": "Bundle"}))
    assert "年龄不详" in result.minutes and "None岁" not in result.minutes


def test_a_simple_case_goes_to_one_agent(packed_db: Database, tmp_path: Path) -> None:
    chart = _chart(packed_db, {"conditions": ["高脂血症"], "drugs": ["阿托伐他汀"]})
    result = _service(packed_db, tmp_path).consult_chart(chart, MdtRequest(bundle={"resourceType": "Bundle"}))
    assert result.routing == "solo" and len(result.specialties) == 1 and result.complexity <= pool.SOLO_MAX


def test_a_liver_tumour_brings_the_tumour_board(packed_db: Database) -> None:
    from medfusion.apps.mdt.models import CaseDiagnosis, MdtCase

    case = MdtCase(
        patient_id="p",
        sex="male",
        age=60,
        key_results=[],
        medications=[],
        allergies=[],
        procedures=[],
        diagnoses=[CaseDiagnosis(name="肝细胞癌", icd10="C22.000", primary=True)],
    )
    team, routing, _ = pool.select(case, 0, [])
    assert routing == "team"
    assert {"hepatobiliary_surgery", "oncology", "radiotherapy", "imaging", "pathology", "nutrition"} <= set(
        team
    )


def test_borda_weights_rank_by_confidence_and_adds_agreement() -> None:
    def view(label: str, confidence: float, keys: list[str]) -> SpecialtyView:
        options = [Option(key=k, text=k, basis="b", citations=["G1"], confidence=0.5) for k in keys]
        return SpecialtyView(
            specialty=label,
            label=label,
            reason="r",
            options=options,
            confidence=confidence,
            path="specialist",
        )

    ranked = borda([view("甲", 0.9, ["a", "b"]), view("乙", 0.5, ["b", "c"])])
    points = {c.key: c.points for c in ranked}
    assert points == {"a": 1.8, "b": 0.9 + 1.0, "c": 0.5}
    assert ranked[0].key == "b" and ranked[0].supporters == ["甲", "乙"]


def test_low_confidence_triggers_a_second_round(packed_db: Database, tmp_path: Path) -> None:
    chart = _chart(packed_db, {"conditions": ["某罕见综合征", "另一罕见病"], "drugs": []})
    result = _service(packed_db, tmp_path).consult_chart(chart, MdtRequest(bundle={"resourceType": "Bundle"}))
    assert result.rounds == 2 and any(w.code == "low_confidence" for w in result.warnings)
    assert any(s.name == "self-correction" for s in map(lambda d: type("S", (), d), result.trace))


def test_specialty_agents_run_with_the_model_and_tokens_are_counted(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.responder = mdt_eval._agent_responder
    chart = _chart(packed_db, AF_PLAN)
    result = _service(packed_db, tmp_path, openai_server).consult_chart(
        chart, MdtRequest(bundle={"resourceType": "Bundle"})
    )
    assert result.provenance.path == "fused" and result.tokens > 0
    assert any(v.path == "fused" for v in result.specialties)
    assert any(w.code == "drug_conflict" for w in result.warnings)  # the graph check holds on the model path


def test_a_fhir_bundle_and_the_cli(
    packed_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "case.json"
    bundle.write_text(
        json.dumps(chart_to_bundle(_chart(packed_db, AF_PLAN)), ensure_ascii=False), encoding="utf-8"
    )
    code, out, _ = run(["mdt", "run", "--bundle", str(bundle), "--question", "抗凝与用药安全"], capsys)
    assert code == 0 and "# 多学科会诊纪要" in out and "会诊目的：抗凝与用药安全" in out
    code, out, _ = run(["mdt", "run", "--bundle", str(bundle), "--json"], capsys)
    body = json.loads(out)
    assert (
        code == 0
        and body["routing"] == "team"
        and any(w["code"] == "drug_conflict" for w in body["warnings"])
    )
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    code, _, err = run(["mdt", "run", "--bundle", str(tmp_path / "bad.json")], capsys)
    assert code == 2 and "JSON" in err
    code, _, err = run(["mdt", "run"], capsys)
    assert code == 2


@pytest.fixture
def api(
    packed_db: Database, packed_client: PackedClient
) -> tuple[TestClient, dict[str, str], dict[str, str], str]:
    chart = PatientService(packed_db, system_principal()).create(_chart(packed_db, AF_PLAN))
    return (
        packed_client.client,
        packed_client.headers("doctor"),
        packed_client.headers("manager"),
        chart.patient.id,
    )


def test_api_mdt(api: tuple[TestClient, dict[str, str], dict[str, str], str]) -> None:
    client, doctor, manager, pid = api
    response = client.post(
        "/api/mdt", headers=doctor, json={"patient_id": pid, "proposed_drugs": ["阿司匹林"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert any("阿司匹林" in w["message"] for w in body["warnings"] if w["code"] == "drug_conflict")
    assert (
        client.post(
            "/api/feedback", headers=doctor, json={"run_id": body["run_id"], "action": "accept"}
        ).status_code
        == 201
    )
    assert client.post("/api/mdt", headers=manager, json={"patient_id": pid}).status_code == 403
    assert client.post("/api/mdt", headers=doctor, json={}).status_code == 422


def test_planted_conflicts_are_all_found_and_clean_cases_stay_quiet(packed_db: Database) -> None:
    result = mdt_eval.conflicts_and_clean(packed_db, every=8, clean_cases=15)
    assert result["planted"] >= 20 and result["planted_recall"] == 1.0, result["missed"]
    assert result["clean_cases"] == 15 and result["clean_false_alarms"] == 0, result["false_alarm_examples"]
