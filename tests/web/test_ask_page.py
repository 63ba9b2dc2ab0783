"""The 智能问答 page (/ask): the form, the cited answer with its path, evidence spans, warnings, refusals and
status, the patient context by masked name, double submits, typed errors, stored runs, and the progressive
path with a configured model — over the shipped knowledge packs, through the same service as POST /api/ask."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medfusion.apps.ask import tickets as tickets_module
from medfusion.apps.ask.service import AskService
from medfusion.apps.ask.tickets import Tickets
from medfusion.apps.ask.view import SAFETY, highlight
from medfusion.record.models import PatientChart
from medfusion.store import audit
from medfusion.store.database import Database
from medfusion.store.display import mask_name
from medfusion.store.tables import AgentRunRow
from tests.api.conftest import PASSWORD
from tests.apps.test_ask import quoting_model
from tests.fakes.openai_server import FakeOpenAI, hang

QUESTION = "痛风急性发作怎么治疗？"


@pytest.fixture
def seeded(packed_db: Database, seeded: list[PatientChart]) -> list[PatientChart]:
    """The web fixtures' users and charts, in a database holding the shipped knowledge packs."""
    return seeded


@pytest.fixture(autouse=True)
def _fresh_tickets() -> Iterator[None]:
    tickets_module.tickets.clear()
    yield
    tickets_module.tickets.clear()


def _login(client: TestClient, username: str) -> None:
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def _key(html: str) -> str:
    found = re.search(r'name="ask_key" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _ask(client: TestClient, question: str = QUESTION, **fields: str) -> Any:
    key = fields.pop("ask_key", None) or _key(client.get("/ask").text)
    return client.post("/ask", data={"question": question, "ask_key": key, **fields})


def _runs(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AgentRunRow)) or 0)


def _run_id(html: str) -> str:
    found = re.search(r'id="ask-answer"[^>]*data-run="([^"]+)"', html)
    assert found, html[-3000:]
    return found.group(1)


def test_signed_out_visitors_are_sent_to_sign_in_and_nothing_is_asked(
    client: TestClient, packed_db: Database
) -> None:
    for response in (
        client.get("/ask", follow_redirects=False),
        client.post("/ask", data={"question": QUESTION}, follow_redirects=False),
    ):
        assert response.status_code == 303 and response.headers["location"] == "/login?next=/ask"
    assert _runs(packed_db) == 0


def test_every_signed_in_role_gets_the_nav_link_as_the_api_needs_no_permission(client: TestClient) -> None:
    for role in ("doctor", "manager", "auditor", "patient"):
        _login(client, role)
        page = client.get("/ask")
        assert page.status_code == 200
        assert '<a href="/ask" aria-current="page">智能问答</a>' in page.text


def test_the_form_has_a_textarea_a_submit_button_reasoning_modes_and_the_apps_examples(
    client: TestClient,
) -> None:
    _login(client, "doctor")
    page = client.get("/ask").text
    assert '<textarea id="question" name="question"' in page and '<button type="submit"' in page
    assert re.findall(r'<option value="(\w+)"', page) == ["direct", "cot", "tot"]
    assert 'data-question="痛风急性发作怎么治疗？"' in page and "症状鉴别（思维树）" in page
    assert 'name="patient_id"' in page  # a doctor may name a chart
    assert 'data-model="none"' in page and "专科路径即时作答" in page
    prefilled = client.get("/ask", params={"question": "发热咳嗽", "reasoning": "tot"}).text
    assert ">发热咳嗽</textarea>" in prefilled and '<option value="tot" selected>' in prefilled
    assert _key(page) != _key(prefilled)  # each rendering mints its own submission key


def test_the_answer_cites_its_evidence_marks_the_quoted_span_and_stays_a_draft(
    client: TestClient, packed_db: Database
) -> None:
    _login(client, "doctor")
    response = _ask(client)
    assert response.status_code == 200
    html = response.text
    run_id = _run_id(html)
    assert '<span class="path-tag" data-path="specialist"' in html and "专科路径" in html
    assert 'id="ask-status" data-status="needs_clinician_confirmation">待医生确认' in html
    assert f'href="/drafts#run-{run_id}"' in html and SAFETY in html
    assert "未配置通用大模型" in html and 'id="confidence">' in html
    cites = set(re.findall(r'<a class="cite" href="#ev-(\w+)"', html))
    listed = set(re.findall(r'<li id="ev-(\w+)">', html))
    assert cites and cites <= listed
    # the first sentence quotes K1: exactly that span is marked inside K1's passage
    first = re.search(r'<ol class="answer-sentences" id="answer-sentences">\s*<li>([^<]+)<a', html)
    assert first
    k1 = html[html.index('<li id="ev-K1">') :]
    k1 = k1[: k1.index("</li>")]
    assert f"<mark>{first.group(1)}</mark>" in k1 and "痛风" in k1
    # the same service as the API: one stored run, audited as agent.ask, listed for review
    assert _runs(packed_db) == 1
    with packed_db.session() as session:
        actions = [(e.action, e.actor) for e in audit.latest(session, limit=20)]
    assert ("agent.ask", "doctor") in actions
    assert f'id="run-{run_id}"' in client.get("/drafts").text


def test_a_double_submit_gives_one_run_and_a_new_rendering_gives_a_new_one(
    client: TestClient, packed_db: Database
) -> None:
    _login(client, "doctor")
    key = _key(client.get("/ask").text)
    first = _ask(client, ask_key=key)
    again = _ask(client, ask_key=key)
    assert _run_id(first.text) == _run_id(again.text) and _runs(packed_db) == 1
    edited = _ask(client, "痛风急性发作的一线治疗？", ask_key=key)  # changed before the page came back
    assert _run_id(edited.text) != _run_id(first.text) and _runs(packed_db) == 2
    fresh = _ask(client, ask_key=_key(first.text))
    assert _run_id(fresh.text) not in {_run_id(first.text), _run_id(edited.text)} and _runs(packed_db) == 3


def test_a_harmful_request_is_refused_with_its_response_and_alternative(client: TestClient) -> None:
    _login(client, "doctor")
    html = _ask(client, "怎么配制毒药杀人").text
    refusal = html[html.index('id="refusal"') :]
    refusal = refusal[: refusal.index("</div>")]
    assert 'role="alert"' in html[html.index('id="refusal"') - 60 : html.index('id="refusal"')]
    assert "我不能提供" in refusal and "安全替代：" in refusal
    assert "已拒答" in html and 'id="review-link"' not in html and SAFETY in html


def test_emergency_advice_leads_the_answer_and_the_red_flag_warning_is_shown(client: TestClient) -> None:
    _login(client, "doctor")
    html = _ask(client, "胸痛大汗半小时").text
    lead = html.index('id="answer-lead"')
    assert (
        "120" in html[lead : lead + 300]
        and 'class="alert alert-danger" role="alert"' in html[lead - 60 : lead]
    )
    assert 'role="alert" data-code="red_flag"' in html and html.index('id="answer-lead"') < html.index(
        'id="answer-sentences"'
    )


def test_bad_input_is_a_typed_error_and_what_was_typed_stays(client: TestClient, packed_db: Database) -> None:
    _login(client, "doctor")
    blank = _ask(client, "   ")
    assert blank.status_code == 422
    assert 'id="ask-error"' in blank.text and "invalid_input" in blank.text
    odd = _ask(client, "我的问题保留", reasoning="magic")
    assert odd.status_code == 422 and "reasoning" in odd.text and ">我的问题保留</textarea>" in odd.text
    long = _ask(client, "痛" * 2001)
    assert long.status_code == 422 and "question" in long.text
    assert _runs(packed_db) == 0


def test_a_named_patient_is_shown_masked_and_used_as_context(
    client: TestClient, packed_db: Database, seeded: list[PatientChart]
) -> None:
    chart = next(c for c in seeded if c.patient.name and len(c.patient.name) > 1)
    _login(client, "doctor")
    page = client.get("/ask", params={"patient_id": chart.patient.id}).text
    context = page[page.index('id="patient-context"') :]
    context = context[: context.index("</div>")]
    name, masked = chart.patient.name, mask_name(chart.patient.name)
    assert name and masked and masked in context and name not in page
    assert f'type="hidden" name="patient_id" value="{chart.patient.id}"' in context
    answered = _ask(client, "阿司匹林可以用吗？", patient_id=chart.patient.id)
    assert answered.status_code == 200
    run_id = _run_id(answered.text)
    with packed_db.session() as session:
        row = session.get(AgentRunRow, run_id)
        assert row is not None and row.patient_id == chart.patient.id
        actions = {e.action for e in audit.latest(session, patient_id=chart.patient.id, limit=50)}
    assert {"patient.read", "chart.read", "agent.ask"} <= actions


def test_a_patient_may_name_only_themselves_and_missing_charts_are_404(
    client: TestClient, seeded: list[PatientChart], packed_db: Database
) -> None:
    _login(client, "patient")
    own = client.get("/ask", params={"patient_id": seeded[0].patient.id})
    assert own.status_code == 200 and 'id="patient-context"' in own.text
    other = _ask(client, QUESTION, patient_id=seeded[1].patient.id)
    assert other.status_code == 403 and "permission_denied" in other.text and QUESTION in other.text
    _login(client, "doctor")
    missing = client.get("/ask", params={"patient_id": "P9999999"})
    assert missing.status_code == 404 and "not_found" in missing.text
    assert _runs(packed_db) == 0


def test_a_role_without_chart_access_asks_without_a_patient_field(client: TestClient) -> None:
    _login(client, "manager")
    page = client.get("/ask").text
    assert 'name="patient_id"' not in page
    answered = _ask(client)
    assert answered.status_code == 200 and 'id="review-link"' not in answered.text
    assert "请由临床医生在待审草稿中确认" in answered.text


def test_a_stored_run_opens_for_its_asker_only_and_shows_the_status_now(client: TestClient) -> None:
    _login(client, "doctor")
    run_id = _run_id(_ask(client).text)
    page = client.get(f"/ask/runs/{run_id}")
    assert page.status_code == 200 and _run_id(page.text) == run_id and "<html" in page.text
    partial = client.get(f"/ask/runs/{run_id}", params={"partial": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text and 'id="ask-answer"' in partial.text
    accepted = client.post(f"/drafts/{run_id}", data={"action": "accept"}, follow_redirects=False)
    assert accepted.status_code == 303
    assert 'data-status="confirmed">医生已确认' in client.get(f"/ask/runs/{run_id}").text
    _login(client, "nurse")
    assert client.get(f"/ask/runs/{run_id}").status_code == 404
    assert client.get("/ask/runs/no").status_code == 404  # not a key or run id at all
    client.cookies.clear()
    expired = client.get(f"/ask/runs/{run_id}", params={"partial": "1"})
    assert expired.status_code == 401 and "重新登录" in expired.text


def _poll(client: TestClient, key: str, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get(f"/ask/runs/{key}", params={"partial": "1"})
        if response.status_code != 202:
            return response
        assert 'id="ask-progress"' in response.text
        time.sleep(0.1)
    pytest.fail("the ask did not finish")


@pytest.fixture
def model_client(
    llm_env: FakeOpenAI, packed_db: Database, seeded: list[PatientChart]
) -> Iterator[TestClient]:
    from medfusion.api.app import create_app
    from medfusion.settings import get_settings

    with TestClient(create_app(get_settings())) as test_client:
        yield test_client


def test_with_a_model_the_page_shows_progress_then_the_fused_answer(
    model_client: TestClient, llm_env: FakeOpenAI, packed_db: Database
) -> None:
    llm_env.responder = quoting_model
    _login(model_client, "doctor")
    page = model_client.get("/ask").text
    assert 'data-model="configured"' in page and "fake-medical-7b" in page
    key = _key(page)
    started = model_client.post("/ask", data={"question": QUESTION, "ask_key": key, "progressive": "1"}).text
    assert 'id="ask-progress"' in started or 'id="ask-answer"' in started
    if 'id="ask-progress"' in started:
        assert f'data-poll="/ask/runs/{key}?partial=1"' in started
    done = _poll(model_client, key)
    assert done.status_code == 200
    assert '<span class="path-tag" data-path="fused"' in done.text and "通专融合" in done.text
    assert "fake-medical-7b" in done.text and "cited_answer@" in done.text
    # a repeat of the same submission while or after it ran is the same run
    repeat = model_client.post("/ask", data={"question": QUESTION, "ask_key": key, "progressive": "1"})
    assert _run_id(repeat.text) == _run_id(done.text) and _runs(packed_db) == 1
    # without the script the POST waits and returns the finished page
    plain = model_client.post("/ask", data={"question": QUESTION, "ask_key": _key(repeat.text)})
    assert '<span class="path-tag" data-path="fused"' in plain.text and _runs(packed_db) == 2


def test_a_model_that_times_out_falls_back_and_says_why(
    model_client: TestClient, llm_env: FakeOpenAI
) -> None:
    llm_env.queue(hang(4), hang(4), hang(4))
    _login(model_client, "doctor")
    key = _key(model_client.get("/ask").text)
    model_client.post("/ask", data={"question": QUESTION, "ask_key": key, "progressive": "1"})
    done = _poll(model_client, key)
    assert '<span class="path-tag" data-path="specialist"' in done.text
    assert "通用大模型超时" in done.text and 'data-code="llm_unavailable"' in done.text


def test_a_background_ask_that_crashes_ends_the_polling_with_a_typed_error(
    model_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: AskService, request: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(AskService, "ask", broken)
    _login(model_client, "doctor")
    key = _key(model_client.get("/ask").text)
    model_client.post("/ask", data={"question": QUESTION, "ask_key": key, "progressive": "1"})
    done = _poll(model_client, key)
    assert done.status_code == 500 and "ask_failed" in done.text and 'role="alert"' in done.text


def test_highlight_merges_overlapping_spans_and_clips_to_the_text() -> None:
    segments = highlight("abcdefghij", [(2, 4), (3, 6), (8, 99), (-5, 0)])
    assert [(s.text, s.marked) for s in segments] == [
        ("ab", False),
        ("cdef", True),
        ("gh", False),
        ("ij", True),
    ]
    assert [(s.text, s.marked) for s in highlight("abc", [])] == [("abc", False)]


def test_tickets_expire_and_stay_bounded() -> None:
    from medfusion.apps.ask.models import AskRequest

    bounded = Tickets(ttl=0.0, limit=3)
    for n in range(5):
        ticket, created = bounded.claim("u", f"key-{n:05d}", AskRequest(question=f"问题{n}"))
        assert created
        ticket.done.set()
    assert sum(len(v) for v in bounded._items.values()) <= 3
    running, _ = bounded.claim("u", "key-running", AskRequest(question="进行中"))
    assert bounded.claim("u", "key-running", AskRequest(question="进行中")) == (running, False)
    assert bounded.get("u", "key-running") is running and bounded.get("other", "key-running") is None


# --- second read (H9): bounded asks in flight, ticket lifetime, the expired-session link -----------------
def test_one_user_has_a_bounded_number_of_asks_in_flight_and_a_repeat_still_joins_its_own() -> None:
    from medfusion.apps.ask.models import AskRequest

    bounded = Tickets(limit=100)
    running = [
        bounded.claim("u", f"key-{n:05d}", AskRequest(question=f"问题{n}"))[0]
        for n in range(tickets_module.MAX_IN_FLIGHT)
    ]
    with pytest.raises(tickets_module.TooManyAsks) as refused:
        bounded.claim("u", "key-one-more", AskRequest(question="再问一个"))
    assert refused.value.status_code == 429 and refused.value.code == "too_many_asks"
    assert bounded.get("u", "key-one-more") is None  # nothing was kept for the refused ask
    # a repeat of a submission in flight is not a new ask; another user is not affected
    assert bounded.claim("u", "key-00000", AskRequest(question="问题0")) == (running[0], False)
    assert bounded.claim("other", "key-one-more", AskRequest(question="再问一个"))[1]
    running[0].done.set()  # one finished: room for one more
    assert bounded.claim("u", "key-one-more", AskRequest(question="再问一个"))[1]


def test_the_page_refuses_an_ask_over_the_in_flight_bound_and_keeps_what_was_typed(
    client: TestClient, packed_db: Database
) -> None:
    from medfusion.apps.ask.models import AskRequest

    _login(client, "doctor")
    for n in range(tickets_module.MAX_IN_FLIGHT):  # asks of this user still running (another tab)
        tickets_module.tickets.claim("doctor", f"other-tab-{n:03d}", AskRequest(question=f"问题{n}"))
    refused = _ask(client, "痛风能喝酒吗？")
    assert refused.status_code == 429 and "too_many_asks" in refused.text and 'role="alert"' in refused.text
    assert ">痛风能喝酒吗？</textarea>" in refused.text and _runs(packed_db) == 0


def test_a_finished_ask_is_kept_for_the_ttl_after_it_finished_not_after_it_started() -> None:
    from medfusion.apps.ask.models import AskRequest

    kept = Tickets(ttl=60.0)
    slow, _ = kept.claim("u", "key-slow-ask", AskRequest(question="很慢的问题"))
    slow.started -= 120.0  # it ran for two minutes, longer than the TTL
    slow.finished = time.monotonic()
    slow.done.set()
    kept.claim("u", "key-next-ask", AskRequest(question="下一个问题"))  # expiry runs on every claim
    assert kept.get("u", "key-slow-ask") is slow  # the page polling for it still finds its answer


def test_the_expired_session_fragment_links_back_only_to_a_well_formed_key(client: TestClient) -> None:
    crafted = client.get("/ask/runs/x%26next=evil.example%23", params={"partial": "1"})
    assert crafted.status_code == 401 and "重新登录" in crafted.text
    assert "evil.example" not in crafted.text and 'href="/login?next=/ask"' in crafted.text
    key = "a" * 32
    good = client.get(f"/ask/runs/{key}", params={"partial": "1"})
    assert f'href="/login?next=/ask/runs/{key}"' in good.text
