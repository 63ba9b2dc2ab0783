"""MDT for the web page: the progress hook (team → each specialty as it answers → consensus, the result
unchanged), a pasted case read into a chart, specialties chosen by the chairing clinician, the principal
diagnosis of the latest encounter, the progress record, and the minutes as .docx."""

from __future__ import annotations

import io
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import docx
import pytest
from benchmarks import mdt_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medfusion.apps.assistive import SAFETY
from medfusion.apps.mdt import case as cases
from medfusion.apps.mdt.minutes_docx import minutes_docx
from medfusion.apps.mdt.models import MdtEvent, MdtRequest
from medfusion.apps.mdt.progress import STALE, ProgressBook, Recorder
from medfusion.apps.mdt.service import MdtService
from medfusion.errors import InvalidInput, NotFound
from medfusion.graph import Graph
from medfusion.record.clinical_time import SHANGHAI
from medfusion.record.models import Condition, DiagnosisRole, Encounter, PatientChart
from medfusion.store.access import Principal
from medfusion.store.database import Database
from medfusion.synth import generate_population
from tests.conftest import PackedClient
from tests.fakes.openai_server import FakeOpenAI, general_model

DOCTOR = Principal("dr_progress", "doctor")
AF_PLAN = {
    "conditions": ["心房颤动", "2型糖尿病", "慢性肾脏病"],
    "drugs": ["华法林", "二甲双胍", "布洛芬"],
    "allergies": ["青霉素"],
}
AF_TEXT = (
    "68岁男性。诊断：心房颤动，2型糖尿病，慢性肾脏病3期。在用华法林、二甲双胍。青霉素过敏。"
    "否认冠心病。拟加用布洛芬止痛。"
)


def _chart(db: Database, plan: dict[str, list[str]]) -> PatientChart:
    template = next(iter(generate_population(1, seed=41)))
    return mdt_eval.chart_for(Graph(db), template, plan)


def _service(db: Database, tmp_path: Path, server: FakeOpenAI | None = None) -> MdtService:
    return MdtService(db, DOCTOR, general_model(server, tmp_path / "v"))


def test_progress_tells_the_team_then_each_specialty_then_the_consensus(
    packed_db: Database, tmp_path: Path
) -> None:
    chart = _chart(packed_db, AF_PLAN)
    request = MdtRequest(bundle={"resourceType": "Bundle"})
    events: list[MdtEvent] = []
    result = _service(packed_db, tmp_path).consult_chart(chart, request, progress=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "team" and kinds[-1] == "consensus" and set(kinds[1:-1]) == {"view"}
    team = [m.specialty for m in events[0].team]
    assert team == [v.specialty for v in result.specialties] and events[0].routing == result.routing
    told = [e.view for e in events if e.view is not None]
    assert [(v.specialty, v.confidence) for v in told] == [
        (v.specialty, v.confidence) for v in result.specialties
    ]
    # clinical pharmacy names itself, not the conflict it reviews (the view's key was overwritten before)
    assert "clinical_pharmacy" in team and all(not v.specialty.startswith("review:") for v in told)
    quiet = _service(packed_db, tmp_path).consult_chart(chart, request)
    assert quiet.minutes == result.minutes and quiet.consensus == result.consensus


def test_a_second_round_is_announced_with_the_specialties_asked_again(
    packed_db: Database, tmp_path: Path
) -> None:
    chart = _chart(packed_db, {"conditions": ["某罕见综合征", "另一罕见病"], "drugs": []})
    events: list[MdtEvent] = []
    result = _service(packed_db, tmp_path).consult_chart(
        chart, MdtRequest(bundle={"resourceType": "Bundle"}), progress=events.append
    )
    assert result.rounds == 2
    again = next(e for e in events if e.kind == "round")
    assert again.round == 2 and again.team
    assert {e.view.specialty for e in events if e.view and e.round == 2} == {m.specialty for m in again.team}


def test_model_backed_specialties_report_as_they_finish(
    packed_db: Database, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    openai_server.responder = mdt_eval._agent_responder
    chart = _chart(packed_db, AF_PLAN)
    threads: set[str] = set()

    def hear(event: MdtEvent) -> None:
        if event.kind == "view":
            threads.add(threading.current_thread().name)

    result = _service(packed_db, tmp_path, openai_server).consult_chart(
        chart, MdtRequest(bundle={"resourceType": "Bundle"}), progress=hear
    )
    assert result.provenance.path == "fused"
    assert threads and threading.main_thread().name not in threads  # told from the agents' worker threads


def test_a_pasted_case_is_read_into_a_chart(packed_db: Database) -> None:
    read = cases.from_text(Graph(packed_db), AF_TEXT, date(2026, 5, 1))
    chart = read.chart
    assert [(c.name, c.icd10_code, c.role.value) for c in chart.conditions] == [
        ("心房颤动", "I48", "primary"),
        ("2型糖尿病", "E11", "secondary"),
        ("慢性肾脏病", "N18", "secondary"),
    ]  # 冠心病 is denied (否认), so it is no diagnosis
    assert [m.drug_name for m in chart.medications] == ["华法林", "二甲双胍"]
    assert [a.substance for a in chart.allergies] == ["青霉素"]
    assert read.proposed_drugs == ["布洛芬"]
    assert chart.patient.sex.value == "male" and cases.from_chart(chart, date(2026, 5, 1)).age == 68


def test_a_pasted_case_runs_through_the_api_request_and_finds_the_proposed_drug_conflict(
    packed_db: Database, tmp_path: Path
) -> None:
    result = _service(packed_db, tmp_path).run(MdtRequest(case=AF_TEXT, question="抗凝与镇痛"))
    assert any(w.code == "drug_conflict" and "布洛芬" in w.message for w in result.warnings)
    assert result.case.patient_id.startswith("TEXT-") and result.case.age is not None
    with pytest.raises(InvalidInput) as caught:
        _service(packed_db, tmp_path).run(MdtRequest(case="患者近来睡眠不好，无其他不适"))
    assert caught.value.code == "no_diagnoses"


def test_symptom_codes_are_no_diagnoses_and_negated_diseases_are_left_out(packed_db: Database) -> None:
    read = cases.from_text(Graph(packed_db), "原发性支气管肺癌，咳嗽，发热；无糖尿病", date(2026, 5, 1))
    assert [c.icd10_code for c in read.chart.conditions] == ["C34"]  # not 咳嗽 R05, not the denied 糖尿病
    assert read.chart.patient.birth_date is None  # no age written: none invented


def test_chosen_specialties_sit_exactly(packed_db: Database, tmp_path: Path) -> None:
    chart = _chart(packed_db, AF_PLAN)
    chosen = MdtRequest(bundle={"resourceType": "Bundle"}, specialties=["nephrology"])
    result = _service(packed_db, tmp_path).consult_chart(chart, chosen)
    assert [v.specialty for v in result.specialties] == ["nephrology"] and result.routing == "solo"
    assert result.specialties[0].reason.startswith("主持医生指定")
    with pytest.raises(InvalidInput) as caught:
        _service(packed_db, tmp_path).consult_chart(
            chart, MdtRequest(bundle={"resourceType": "Bundle"}, specialties=["astrology"])
        )
    assert caught.value.code == "unknown_specialty"


def test_the_principal_diagnosis_is_the_latest_encounters() -> None:
    when = [datetime(2025, m, 1, 9, tzinfo=SHANGHAI) for m in (1, 6)]
    chart = PatientChart.model_validate(
        {
            "patient": {"id": "P1", "sex": "female"},
            "encounters": [
                Encounter(id=f"e{i}", encounter_class="outpatient", admitted_at=t) for i, t in enumerate(when)
            ],
            "conditions": [
                Condition(
                    id="c1", encounter_id="e0", icd10_code="E11", name="2型糖尿病", role=DiagnosisRole.primary
                ),
                Condition(id="c2", encounter_id="e0", icd10_code="I10", name="原发性高血压"),
                Condition(
                    id="c3",
                    encounter_id="e1",
                    icd10_code="I10",
                    name="原发性高血压",
                    role=DiagnosisRole.primary,
                ),
                Condition(id="c4", encounter_id="e1", icd10_code="E11", name="2型糖尿病"),
            ],
        }
    )
    case = cases.from_chart(chart)
    assert [(d.name, d.primary) for d in case.diagnoses] == [("原发性高血压", True), ("2型糖尿病", False)]


def test_progress_records_are_per_user_one_per_form_and_go_stale(tmp_path: Path) -> None:
    book = ProgressBook(tmp_path / "runs")
    key = "a" * 32
    record, first = book.create(key, "dr_a", "case", None)
    again, second = book.create(key, "dr_a", "case", None)
    assert first and not second and again.id == record.id
    with pytest.raises(NotFound):
        book.read(key, "dr_b")
    with pytest.raises(InvalidInput):
        book.read("../../etc/passwd", "dr_a")
    recorder = Recorder(book, record)
    recorder.done("run-1", "needs_clinician_confirmation")
    assert book.read(key, "dr_a").run_id == "run-1" and not book.read(key, "dr_a").interrupted
    old = record.model_copy(update={"state": "running", "updated": datetime.now(UTC) - STALE - timedelta(1)})
    assert old.interrupted


def test_minutes_docx_holds_the_whole_consultation(packed_db: Database, tmp_path: Path) -> None:
    result = _service(packed_db, tmp_path).run(MdtRequest(case=AF_TEXT, question="抗凝与镇痛"))
    data = minutes_docx(result, "王**", "待医生确认", "2026-05-01 09:00 CST")
    document = docx.Document(io.BytesIO(data))
    text = "\n".join(p.text for p in document.paragraphs)
    cells = "\n".join(c.text for t in document.tables for row in t.rows for c in row.cells)
    assert document.paragraphs[0].text == "多学科会诊纪要"
    assert "王**（TEXT-" in text and "68岁" in text and "心房颤动（I48），主要诊断" in text
    assert all(v.label in cells for v in result.specialties)  # participants
    assert all(f"{v.label}（置信度" in text for v in result.specialties)  # each specialty's opinion
    assert result.consensus[0].text in cells and f"{result.consensus[0].points:.2f}" in cells
    assert "华法林 与 布洛芬" in text  # the conflict
    assert "状态：待医生确认" in text and SAFETY in text


def test_the_api_takes_a_case_text_and_chosen_specialties(packed_client: PackedClient) -> None:
    client, doctor = packed_client.client, packed_client.headers("doctor")
    body = {"case": AF_TEXT, "specialties": ["cardiology", "clinical_pharmacy"]}
    response = client.post("/api/mdt", headers=doctor, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [v["specialty"] for v in result["specialties"]] == ["cardiology", "clinical_pharmacy"]
    assert any(w["code"] == "drug_conflict" and "布洛芬" in w["message"] for w in result["warnings"])
    unknown = client.post("/api/mdt", headers=doctor, json={"case": AF_TEXT, "specialties": ["astrology"]})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_specialty"
    two = client.post("/api/mdt", headers=doctor, json={"case": AF_TEXT, "patient_id": "P1"})
    assert two.status_code == 422  # exactly one source


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(
            ["心房颤动", "无", "否认", "过敏", "拟", "华法林", "，", "。", "68岁", "男", "女", "咳嗽", "肝癌"]
        )
        | st.text(max_size=6),
        max_size=25,
    )
)
def test_any_pasted_text_is_a_chart_or_a_typed_error(packed_db: Database, parts: list[str]) -> None:
    try:
        read = cases.from_text(Graph(packed_db), "".join(parts), date(2026, 5, 1))
    except InvalidInput as error:
        assert error.code == "no_diagnoses"
    else:
        assert read.chart.conditions and read.chart.conditions[0].role is DiagnosisRole.primary
