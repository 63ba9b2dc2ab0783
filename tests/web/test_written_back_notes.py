"""A confirmed MDT draft becomes a chart note holding the minutes' Markdown; the chart used to show it in a
``<pre>`` with its ``#`` and ``**`` (what issue 16 reported for the drafts page) — now such a note renders as
a document, and typed notes keep their plain-text layout."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from medfusion.record.models import ClinicalNote, NoteSection, NoteType, PatientChart
from medfusion.web.chart_view import written_back
from tests.api.conftest import PASSWORD


def _note(note_id: str, title: str, sections: int = 1) -> ClinicalNote:
    return ClinicalNote(
        id=note_id,
        note_type=NoteType.consultation_record,
        title=title,
        written_at=datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
        sections=[NoteSection(title=title, text="# 标题\n\n**要点**") for _ in range(sections)],
    )


def test_only_a_note_the_feedback_service_wrote_back_counts_as_a_document() -> None:
    assert written_back("P0000001", _note("P0000001-mdt-7c9b3394", "多学科会诊纪要"))
    assert not written_back("P0000002", _note("P0000001-mdt-7c9b3394", "多学科会诊纪要"))  # another's id
    assert not written_back("P0000001", _note("P0000001-mdt-7c9b3394", "会诊记录"))  # not the app's title
    assert not written_back("P0000001", _note("P0000001-ask-7c9b3394", "多学科会诊纪要"))  # ask writes none
    assert not written_back("P0000001", _note("P0000001-mdt-7c9b", "多学科会诊纪要"))
    assert not written_back("P0000001", _note("P0000001-mdt-7c9b3394", "多学科会诊纪要", sections=2))


def test_confirmed_minutes_render_as_a_document_on_the_patients_chart(
    client: TestClient, auth: Callable[[str], dict[str, str]], seeded: list[PatientChart]
) -> None:
    patient_id = seeded[0].patient.id
    doctor = auth("doctor")
    held = client.post("/api/mdt", json={"patient_id": patient_id}, headers=doctor)
    assert held.status_code == 200, held.text
    accepted = client.post(
        "/api/feedback", json={"run_id": held.json()["run_id"], "action": "accept"}, headers=doctor
    )
    assert accepted.status_code == 201, accepted.text
    note_id = accepted.json()["note_id"]
    client.post("/login", data={"username": "patient", "password": PASSWORD, "next": "/"})
    page = client.get(f"/patients/{patient_id}").text
    notes = page[page.index('id="notes"') :]
    minutes = re.search(r"<summary><strong>多学科会诊纪要</strong>.*?</details>", notes, re.S)
    assert minutes, "the confirmed minutes are on the patient's chart"
    shown = minutes.group(0)
    assert '<div class="doc">' in shown and "<h1>" in shown and "<strong>" in shown
    assert "**" not in shown and "<pre>" not in shown
    assert note_id.startswith(patient_id)
    typed = [n for n in seeded[0].notes if n.text.strip()]
    assert typed and "<pre>" in notes  # the chart's typed notes still read as written
