"""The pocket chief physician: negation-aware findings, the knowledge-graph differential, level-adapted
output, chart-aware drug cautions, the model path under guardrails, API, CLI and the dxy_dialog evaluation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from benchmarks import consult_dxy
from fastapi.testclient import TestClient

from medfusion.apps.consult import findings
from medfusion.apps.consult.models import ConsultRequest
from medfusion.apps.consult.service import ConsultService
from medfusion.errors import InvalidInput
from medfusion.graph import Graph
from medfusion.graph.model import MEDICINES
from medfusion.record.models import AllergyIntolerance, PatientChart
from medfusion.store.access import Principal, system_principal
from medfusion.store.database import Database
from medfusion.store.patient_service import PatientService
from medfusion.synth import generate_population
from tests.cli.test_cli import run
from tests.conftest import PackedClient, shared_dataset
from tests.fakes.openai_server import Behaviour, FakeOpenAI, general_model, json_answer

DOCTOR = Principal("dr_zhou", "doctor")
CHILD = "3岁男孩，发热2天，咳嗽，气促，无皮疹，无腹泻"


def _service(db: Database, tmp_path: Path, server: FakeOpenAI | None = None) -> ConsultService:
    return ConsultService(db, DOCTOR, general_model(server, tmp_path / "v"))


def test_negated_findings_are_absent(packed_db: Database) -> None:
    found = findings.parse(Graph(packed_db), "发烧两天，咳嗽，无皮疹，否认腹泻，但有呕吐")
    assert {"发热", "咳嗽", "呕吐"} <= set(found.present)
    assert {"皮疹", "腹泻"} <= set(found.absent) and not set(found.present) & set(found.absent)


def test_meiyou_negates_and_a_later_you_affirms(packed_db: Database) -> None:
    # 没有 is a cue, not the affirming 有 that opens a new clause (found by the consult page's review)
    found = findings.parse(Graph(packed_db), "发热两天，没有咳嗽，有呕吐")
    assert "咳嗽" in found.absent and "咳嗽" not in found.present
    assert {"发热", "呕吐"} <= set(found.present)


def test_lay_words_and_containment_reach_graph_symptoms(packed_db: Database) -> None:
    found = findings.from_terms(Graph(packed_db), ["发烧", "拉肚子", "鼻涕"], ["揉眼睛"])
    assert found.present == ["发热", "腹泻", "流涕"] and found.absent == ["眼痒"]


def test_absent_typical_findings_count_against_a_branch(packed_db: Database) -> None:
    graph = Graph(packed_db)
    candidates = ["手足口病", "儿童社区获得性肺炎"]
    plain = graph.queries.rank_by_naive_bayes(["发热"], [], candidates=candidates)
    opposed = graph.queries.rank_by_naive_bayes(["发热"], ["咳嗽", "气促"], candidates=candidates)
    assert (
        opposed[0].disease == "手足口病"
        and "咳嗽" in next(r for r in opposed if r.disease != "手足口病").opposing
    )
    assert {r.disease for r in plain} == set(candidates)


def test_consult_gives_a_cited_differential(packed_db: Database, tmp_path: Path) -> None:
    result = _service(packed_db, tmp_path).consult(ConsultRequest(case=CHILD, level="junior"))
    top = result.hypotheses[0]
    assert top.disease == "儿童社区获得性肺炎" and top.checks and top.drugs
    assert top.treatment and "治疗" in top.treatment[0].location.section  # type: ignore[union-attr]
    ids = {e.id for e in result.evidence}
    assert all(set(s.citations) <= ids and s.citations for s in result.sentences)
    assert result.provenance.path == "specialist" and result.status.value == "needs_clinician_confirmation"
    assert "可追问" in result.answer and "### 治疗思路与用药" in result.answer


def test_depth_follows_the_level(packed_db: Database, tmp_path: Path) -> None:
    service = _service(packed_db, tmp_path)
    junior = service.consult(ConsultRequest(case=CHILD, level="junior"))
    senior = service.consult(ConsultRequest(case=CHILD, level="senior"))
    assert len(junior.hypotheses) > len(senior.hypotheses) and len(junior.sentences) > len(senior.sentences)
    assert "治疗思路" not in senior.answer and "可追问" not in senior.answer


def test_suggested_drugs_are_checked_against_the_chart(packed_db: Database, tmp_path: Path) -> None:
    chart: PatientChart = next(iter(generate_population(1, seed=21)))
    chart = chart.model_copy(
        update={
            "allergies": [AllergyIntolerance(id=f"{chart.patient.id}-a", substance="青霉素")],
            "medications": [],
        }
    )
    PatientService(packed_db, system_principal()).create(chart)
    result = _service(packed_db, tmp_path).consult(
        ConsultRequest(case=CHILD, patient_id=chart.patient.id, level="attending")
    )
    amoxicillin = next(d for h in result.hypotheses for d in h.drugs if d.name == "阿莫西林")
    assert amoxicillin.caution and "青霉素" in amoxicillin.caution
    assert any(w.code == "drug_conflict" and "阿莫西林" in w.message for w in result.warnings)


def test_only_medicines_are_suggested_as_drugs(packed_db: Database, tmp_path: Path) -> None:
    """A treated_by link may name a procedure (光疗, 鼻腔盐水冲洗): no drug to suggest or conflict-check."""
    service, graph = _service(packed_db, tmp_path), Graph(packed_db)
    jaundice = service.consult(
        ConsultRequest(case="出生5天新生儿，皮肤巩膜黄染加重2天，吃奶可，无发热", level="junior")
    )
    assert any(h.disease == "新生儿高胆红素血症" for h in jaundice.hypotheses)
    assert "光疗" not in {d.name for h in jaundice.hypotheses for d in h.drugs}
    sinusitis = service.consult(
        ConsultRequest(case="鼻塞、流脓涕3个月，嗅觉减退，头面部胀痛", level="junior")
    )
    top = next(h for h in sinusitis.hypotheses if h.disease == "慢性鼻窦炎")
    names = {d.name for d in top.drugs}
    assert "糠酸莫米松鼻喷雾剂" in names and "鼻腔盐水冲洗" not in names
    for name in {d.name for h in sinusitis.hypotheses for d in h.drugs}:
        assert any(e.type in MEDICINES for e in graph.store.named(name)), name


def test_a_case_without_findings_is_a_clear_error(packed_db: Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as error:
        _service(packed_db, tmp_path).consult(ConsultRequest(case="帮我看看"))
    assert error.value.code == "no_findings"


@pytest.mark.parametrize(
    "case", ["服用大量安眠药自杀未遂，意识不清", "喝敌敌畏自杀未遂2小时，呕吐，瞳孔缩小，大汗"]
)
def test_a_case_naming_a_suicide_attempt_or_poisoning_is_a_case(
    packed_db: Database, tmp_path: Path, case: str
) -> None:
    """Before: the guardrails refused it (自杀), or it was rejected as "no findings"."""
    result = _service(packed_db, tmp_path).consult(ConsultRequest(case=case, level="attending"))
    assert result.status.value == "needs_clinician_confirmation"
    red = next(w for w in result.warnings if w.code == "red_flag")
    assert "120" in red.message and "中毒" in red.message and "12356" in red.message
    assert "red_flag" in result.answer


def test_the_model_explains_and_the_guardrails_check_it(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    def explain(body: dict[str, Any]) -> Behaviour:
        graph_ids = re.findall(r"^\[(G\d+)\] (.+?)（来源", body["messages"][-1]["content"], flags=re.M)
        ident = graph_ids[0][0]
        return json_answer(
            {
                "reasoning": "发热咳嗽气促提示下呼吸道。",
                "sentences": [
                    {"text": "发热、咳嗽伴气促，首先考虑儿童社区获得性肺炎。", "citations": [ident]},
                    {"text": "可用莫西沙星每日400mg。", "citations": [ident]},
                ],
            }
        )

    openai_server.responder = explain
    result = _service(packed_db, tmp_path, openai_server).consult(ConsultRequest(case=CHILD))
    assert result.provenance.path == "fused" and result.provenance.prompt == "consult@1.0.0"
    assert [s.text for s in result.sentences] == ["发热、咳嗽伴气促，首先考虑儿童社区获得性肺炎。"]
    assert {"unsupported_drug", "dose_beyond_knowledge"} & {f.code for f in result.guardrails}
    assert result.hypotheses[0].disease == "儿童社区获得性肺炎"  # the differential stays the specialist's


@pytest.fixture
def api(packed_client: PackedClient) -> tuple[TestClient, dict[str, str], dict[str, str]]:
    return packed_client.client, packed_client.headers("doctor"), packed_client.headers("manager")


def test_api_consult(api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, doctor, manager = api
    response = client.post("/api/consult", headers=doctor, json={"case": CHILD, "level": "senior"})
    assert response.status_code == 200 and response.json()["hypotheses"][0]["disease"] == "儿童社区获得性肺炎"
    run_id = response.json()["run_id"]
    accepted = client.post("/api/feedback", headers=doctor, json={"run_id": run_id, "action": "accept"})
    assert accepted.status_code == 201  # consults are reviewed like any draft
    assert client.post("/api/consult", headers=manager, json={"case": CHILD}).status_code == 403
    bad = client.post("/api/consult", headers=doctor, json={"case": CHILD, "level": "professor"})
    assert bad.status_code == 422


def test_cli_consult(packed_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["consult", CHILD, "--level", "junior"], capsys)
    assert code == 0 and "儿童社区获得性肺炎" in out and "住院医师版" in out
    code, out, _ = run(["consult", CHILD, "--json"], capsys)
    assert code == 0 and json.loads(out)["hypotheses"]
    code, _, err = run(["consult", CHILD, "--level", "x"], capsys)
    assert code == 2 and "--level" in err


@pytest.mark.dataset
def test_dxy_dialog_differential_beats_the_baseline(packed_db: Database) -> None:
    result = consult_dxy.evaluate(packed_db, shared_dataset("dxy_dialog"))
    assert result["cases"] == 423
    assert result["closed_top1"] >= 0.6 > result["baseline_most_frequent"]
    assert result["closed_top3"] >= 0.9 and result["open_top3"] >= 0.7
