"""Clinician feedback: accept / edit / reject with audit and run status, permissions, retrieval
re-weighting, DPO/SFT export (de-identified), API and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from medfusion.apps.ask.models import AskRequest
from medfusion.apps.ask.service import AskService
from medfusion.errors import NotFound, PermissionDenied
from medfusion.feedback.export import build, export
from medfusion.feedback.service import Action, FeedbackRequest, FeedbackService
from medfusion.knowledge.base import KnowledgeBase
from medfusion.knowledge.documents import DocumentMeta
from medfusion.llm import GeneralModel
from medfusion.settings import Settings
from medfusion.store import audit
from medfusion.store.access import Principal
from medfusion.store.database import Database
from medfusion.store.tables import AgentRunRow, FeedbackRow, KbFeedbackRow
from tests.cli.test_cli import run
from tests.conftest import PackedClient

DOCTOR = Principal("dr_wang", "doctor")


def _ask(db: Database, tmp_path: Path, question: str = "痛风急性发作怎么治疗？") -> str:
    general = GeneralModel.from_settings(Settings(data_dir=tmp_path / "v"))
    return AskService(db, DOCTOR, general).ask(AskRequest(question=question)).run_id


def _weights(db: Database) -> dict[str, float]:
    """Net feedback per passage."""
    totals: dict[str, float] = {}
    with db.session() as session:
        for r in session.scalars(select(KbFeedbackRow)):
            totals[r.chunk_id] = totals.get(r.chunk_id, 0.0) + r.delta
    return totals


def test_accept_confirms_the_run_reweights_its_passages_and_is_audited(
    packed_db: Database, tmp_path: Path
) -> None:
    run_id = _ask(packed_db, tmp_path)
    record = FeedbackService(packed_db, DOCTOR).record(FeedbackRequest(run_id=run_id, action=Action.accept))
    assert record.status == "confirmed" and record.passages >= 1
    assert _weights(packed_db) and all(v == 1.0 for v in _weights(packed_db).values())
    with packed_db.session() as session:
        assert session.get(AgentRunRow, run_id).status == "confirmed"  # type: ignore[union-attr]
        assert any(e.action == "feedback.accept" for e in audit.latest(session))


def test_edit_counts_half_and_reject_counts_against(packed_db: Database, tmp_path: Path) -> None:
    first, second = _ask(packed_db, tmp_path), _ask(packed_db, tmp_path)
    service = FeedbackService(packed_db, DOCTOR)
    service.record(FeedbackRequest(run_id=first, action=Action.edit, edited="急性期首选秋水仙碱或NSAIDs。"))
    assert all(v == 0.5 for v in _weights(packed_db).values())
    record = service.record(FeedbackRequest(run_id=second, action=Action.reject, reason="没有提到禁忌"))
    assert record.status == "rejected"
    assert all(v == -0.5 for v in _weights(packed_db).values())  # +0.5 from the edit, −1 from the reject


@pytest.mark.parametrize(
    ("action", "extra"),
    [(Action.edit, {}), (Action.edit, {"edited": "  "}), (Action.reject, {})],
)
def test_incomplete_acts_are_refused(action: Action, extra: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        FeedbackRequest(run_id="x", action=action, **extra)


def test_who_may_review(packed_db: Database, tmp_path: Path) -> None:
    run_id = _ask(packed_db, tmp_path)
    FeedbackService(packed_db, Principal("n1", "nurse")).record(
        FeedbackRequest(run_id=run_id, action=Action.accept)
    )
    for role in ("patient", "manager", "auditor"):
        with pytest.raises(PermissionDenied):
            FeedbackService(packed_db, Principal("x", role)).record(
                FeedbackRequest(run_id=run_id, action=Action.accept)
            )
    with pytest.raises(NotFound):
        FeedbackService(packed_db, DOCTOR).record(FeedbackRequest(run_id="nope", action=Action.accept))


def test_rejected_passages_fall_and_accepted_ones_rise(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'kb.db'}")
    db.upgrade()
    kb = KnowledgeBase(db)
    kb.ingest_text("痛风急性发作可用秋水仙碱。", DocumentMeta(source="a", title="甲"))
    kb.ingest_text("痛风急性发作可用秋水仙碱治疗。", DocumentMeta(source="b", title="乙"))
    before = [h.source for h in kb.search("痛风急性发作用什么药", k=2)]
    top, other = kb.search("痛风急性发作用什么药", k=2)
    from medfusion.feedback import prior as feedback_prior

    with db.session() as session:
        feedback_prior.record(session, "痛风急性发作用什么药？", [top.chunk_id], -1.0)
        feedback_prior.record(session, "痛风急性发作用什么药？", [other.chunk_id], 1.0)
    after = [h.source for h in kb.search("痛风急性发作用什么药", k=2)]
    assert after == list(reversed(before))
    # feedback on one question says nothing about an unrelated one
    assert feedback_prior.priors(db, "高血压能吃党参吗", [top.chunk_id, other.chunk_id]) == {}
    kb.use_feedback = False
    assert [h.source for h in kb.search("痛风急性发作用什么药", k=2)] == before


def test_export_dpo_and_sft_deidentified(packed_db: Database, tmp_path: Path) -> None:
    service = FeedbackService(packed_db, DOCTOR)
    question = "患者张建国痛风急性发作怎么治疗？"
    edited_run, rejected_run, accepted_run = (_ask(packed_db, tmp_path, question) for _ in range(3))
    service.record(
        FeedbackRequest(run_id=edited_run, action=Action.edit, edited="张建国急性期首选秋水仙碱。")
    )
    service.record(FeedbackRequest(run_id=rejected_run, action=Action.reject, reason="不完整"))
    service.record(FeedbackRequest(run_id=accepted_run, action=Action.accept))
    with packed_db.session() as session:
        rows = list(session.scalars(select(FeedbackRow)))
    pairs = build(rows, "dpo")
    # the edit; the rejected draft against the edit (the accepted draft is the same specialist text as the
    # rejected one, so it makes no pair)
    assert len(pairs) == 2
    assert all(set(p) == {"prompt", "chosen", "rejected"} and p["chosen"] != p["rejected"] for p in pairs)
    out = tmp_path / "dpo.jsonl"
    report = export(packed_db, DOCTOR, "dpo", out)
    text = out.read_text(encoding="utf-8")
    assert "[K1]" not in text  # citation marks mean nothing without the evidence
    assert report.rows == 2 and report.deidentified and "张建国" not in text and "[姓名]" in text
    sft = export(packed_db, DOCTOR, "sft", tmp_path / "sft.jsonl")
    first = json.loads((tmp_path / "sft.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert sft.rows == 2 and [m["role"] for m in first["messages"]] == ["user", "assistant"]
    with pytest.raises(PermissionDenied):
        export(packed_db, DOCTOR, "dpo", out, keep_identifiers=True)


@pytest.fixture
def client(packed_client: PackedClient) -> tuple[TestClient, dict[str, str], dict[str, str]]:
    return packed_client.client, packed_client.headers("doctor"), packed_client.headers("manager")


def test_api_feedback(client: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    api, doctor, manager = client
    run_id = api.post("/api/ask", headers=doctor, json={"question": "痛风急性发作怎么治疗？"}).json()[
        "run_id"
    ]
    created = api.post("/api/feedback", headers=doctor, json={"run_id": run_id, "action": "accept"})
    assert created.status_code == 201 and created.json()["status"] == "confirmed"
    bad = api.post("/api/feedback", headers=doctor, json={"run_id": run_id, "action": "reject"})
    assert bad.status_code == 422 and bad.json()["error"]["code"]
    assert (
        api.post("/api/feedback", headers=manager, json={"run_id": run_id, "action": "accept"}).status_code
        == 403
    )
    listed = api.get("/api/feedback", headers=doctor, params={"run_id": run_id}).json()
    assert [e["action"] for e in listed] == ["accept"]
    stored = api.get(f"/api/ask/runs/{run_id}", headers=doctor).json()
    assert stored["status"] == "confirmed"


def test_cli_feedback(packed_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _ask(packed_db, tmp_path)
    code, out, _ = run(["feedback", "give", run_id, "--action", "reject", "--reason", "证据不符"], capsys)
    assert code == 0 and "rejected" in out
    code, _, err = run(["feedback", "give", run_id, "--action", "edit"], capsys)
    assert code == 2 and "edit" in err
    code, out, _ = run(["feedback", "list"], capsys)
    assert code == 0 and run_id in out
    code, out, _ = run(["feedback", "export", "--format", "sft", "--out", str(tmp_path / "s.jsonl")], capsys)
    assert code == 0 and "0 sft rows" in out


def test_two_submits_racing_on_one_draft_record_one_review_on_either_database(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double click sends the same review twice at once: the run row is locked while the first is
    recorded (SQLite serialises writers anyway; PostgreSQL needs the row lock), so the second sees it."""
    import threading
    import time
    from typing import Any

    from sqlalchemy import func

    from medfusion.feedback import prior as feedback_prior

    run_id = _ask(db, tmp_path)
    real = feedback_prior.record

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)  # widens the window between the status check and the commit
        return real(*args, **kwargs)

    monkeypatch.setattr(feedback_prior, "record", slow)
    records: list[bool] = []

    def submit() -> None:
        request = FeedbackRequest(run_id=run_id, action=Action.accept)
        records.append(FeedbackService(db, DOCTOR).record(request).replayed)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session() as session:
        rows = session.scalar(
            select(func.count()).select_from(FeedbackRow).where(FeedbackRow.run_id == run_id)
        )
    assert rows == 1 and sorted(records) == [False, True]
