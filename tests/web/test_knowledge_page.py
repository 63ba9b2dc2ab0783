"""知识库 /knowledge: who may see and change it, uploads (background ingest, progress, limits, double submits,
an expired session, an interrupted server), browsing chunks, search with marked spans, removal, packs."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medfusion.api.app import create_app
from medfusion.errors import InvalidInput
from medfusion.knowledge import library, uploads
from medfusion.knowledge.base import KnowledgeBase
from medfusion.knowledge.documents import DocType, DocumentMeta
from medfusion.record.models import PatientChart
from medfusion.settings import get_settings
from medfusion.store import audit
from medfusion.store.database import get_database
from tests.api.conftest import PASSWORD
from tests.conftest import PackedClient

GUIDE = "# 血脂管理\n## 随访\n服用他汀者4-6周复查血脂和肝功能。\n## 用药\n阿托伐他汀每晚睡前口服。".encode()


def _login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    response = client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def _upload(
    client: TestClient, name: str = "lipid.md", body: bytes = GUIDE, **fields: str
) -> Any:  # an httpx.Response
    data = {"type": "hospital_sop", "authority": "专业指南", "embed": "", **fields}
    return client.post(
        "/knowledge/documents",
        files={"file": (name, body, "text/markdown")},
        data=data,
        follow_redirects=False,
    )


def _root() -> Path:
    return uploads.root_for(get_settings().resolved_data_dir)


def _task_dirs() -> list[Path]:
    return [p for p in _root().glob("*") if (p / "task.json").exists()] if _root().exists() else []


def _actions(name: str) -> list[audit.AuditEntry]:
    with get_database(get_settings()).session() as session:
        return [e for e in audit.latest(session, limit=500) if e.action == name]


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch, seeded: list[PatientChart]) -> Iterator[TestClient]:
    """Uploads up to 2 KiB, every other request up to 4 KiB."""
    monkeypatch.setenv("MEDFUSION_KB_UPLOAD_MAX_BYTES", "2048")
    monkeypatch.setenv("MEDFUSION_MAX_REQUEST_BYTES", "4096")
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        yield client


def test_staff_may_view_patients_and_managers_may_not_and_only_managers_of_knowledge_upload(
    client: TestClient,
) -> None:
    anonymous = client.get("/knowledge", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=/knowledge")
    for role in ("patient", "manager", "auditor"):
        _login(client, role)
        refused = client.get("/knowledge")
        assert refused.status_code == 403 and "knowledge:manage" in refused.text, role
        assert client.get("/knowledge/search", params={"q": "他汀"}).status_code == 403
    assert {e.actor for e in _actions("kb.view") if e.outcome == "denied"} == {
        "patient",
        "manager",
        "auditor",
    }
    _login(client, "doctor")
    page = client.get("/knowledge")
    assert page.status_code == 200 and "知识包" in page.text and 'id="upload-form"' not in page.text
    assert 'href="/knowledge"' in page.text  # the navigation shows the page to this role
    assert _upload(client).status_code == 403
    assert [e.actor for e in _actions("kb.ingest") if e.outcome == "denied"] == ["doctor"]
    assert not _task_dirs()
    _login(client, "admin")
    form = client.get("/knowledge").text
    assert 'id="upload-form"' in form and 'enctype="multipart/form-data"' in form
    assert f'data-max-bytes="{200 * 1024 * 1024}"' in form and 'name="idempotency_key"' in form
    assert 'accept=".txt,.md,.markdown,.html,.htm,.docx,.pdf"' in form


def test_an_upload_is_ingested_and_embedded_in_the_background_with_its_progress_shown(
    client: TestClient,
) -> None:
    _login(client, "admin")
    response = _upload(client, embed="on", publisher="心内科", idempotency_key="k" * 16)
    assert response.status_code == 303 and response.headers["location"].startswith("/knowledge/tasks/")
    task_id = response.headers["location"].rsplit("/", 1)[1]
    assert uploads.wait(180)
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and "已完成" in page.text and "文档已导入知识库" in page.text
    assert 'max="1" value="1"' in page.text and "data-clear-draft" in page.text
    polled = client.get("/knowledge/tasks.json").json()["tasks"]
    assert polled[0]["id"] == task_id and polled[0]["state"] == "completed"
    assert polled[0]["chunks"] == 2 and polled[0]["embedded"] == 2 == polled[0]["embed_total"]
    assert not (_root() / task_id / "lipid.md").exists()  # ingested: the copy is not kept
    listing = client.get("/knowledge").text
    row = re.search(r"<tr>\s*<td><a href=\"/knowledge/documents/(\w+)\">血脂管理</a>.*?</tr>", listing, re.S)
    assert row is not None
    cells = re.sub(r"<[^>]+>", " ", row.group(0))
    assert "院内规范" in cells and "admin" in cells and "CST" in cells
    assert re.findall(r'class="num">(?:<span class="badge badge-ok">)?(\d+)', row.group(0)) == ["2", "2"]
    upload = _actions("kb.upload")[0]
    assert (
        upload.actor == "admin" and upload.detail["task"] == task_id and upload.detail["bytes"] == len(GUIDE)
    )
    ingest = next(e for e in _actions("kb.ingest") if e.outcome == "success")
    assert ingest.detail == {
        "source": "upload:lipid.md",
        "status": "added",
        "task": task_id,
        "embedded": 2,
        "surface": "web",
    }
    hits = KnowledgeBase(get_database(get_settings())).search("他汀 复查")
    assert hits and hits[0].source == "upload:lipid.md" and hits[0].channels.get("dense")


def test_progress_is_polled_while_a_task_runs(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real = uploads.run_task

    def held(*args: Any) -> uploads.UploadTask:
        assert gate.wait(30)
        return real(*args)

    monkeypatch.setattr(uploads, "run_task", held)
    _login(client, "admin")
    first = _upload(client)
    second = _upload(client, name="second.md", body=b"# second\ntext about aspirin")
    running = client.get(first.headers["location"])
    assert "排队中" in running.text and '<meta http-equiv="refresh" content="3">' in running.text
    assert '<progress class="progress"' in running.text and 'data-active="true"' in running.text
    states = [t["state"] for t in client.get("/knowledge/tasks.json").json()["tasks"]]
    assert states == ["queued", "queued"]
    gate.set()
    assert uploads.wait(60)
    done = client.get(second.headers["location"]).text
    assert "已完成" in done and "http-equiv" not in done


def test_a_double_submit_joins_the_first_task_and_ingests_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    real = uploads.run_task
    monkeypatch.setattr(uploads, "run_task", lambda *a: (gate.wait(30), real(*a))[1])
    _login(client, "admin")
    key = "double-submit-key"
    results: list[str] = []

    def send() -> None:
        results.append(_upload(client, idempotency_key=key).headers["location"])

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1  # the same form sent three times at once: one task
    # the same file again from another form (another key) while the first is still queued joins it too
    assert _upload(client, idempotency_key="another-form-key").headers["location"] == results[0]
    gate.set()
    assert uploads.wait(60)
    assert len(_task_dirs()) == 1 and len(_actions("kb.upload")) == 1
    assert [e.detail["status"] for e in _actions("kb.ingest")] == ["added"]
    # once it is done, the same file is checked against the knowledge base: unchanged, nothing re-indexed
    third = _upload(client, idempotency_key="third-form-key").headers["location"]
    assert uploads.wait(60)
    assert "内容相同，未重复导入" in client.get(third).text
    assert library.documents(get_database(get_settings())).total == 1


def test_unsupported_empty_and_oversized_files_get_a_clear_typed_message(small_limits: TestClient) -> None:
    client = small_limits
    _login(client, "admin")
    exe = _upload(client, name="setup.exe", body=b"MZ" * 10, publisher="卫健委")
    assert exe.status_code == 415
    assert (
        'data-code="unsupported_media_type"' in exe.text
        and "只接受 PDF、DOCX、HTML、Markdown、TXT" in exe.text
    )
    assert 'value="卫健委"' in exe.text  # what was typed is kept
    empty = _upload(client, name="empty.txt", body=b"")
    assert empty.status_code == 422 and 'data-code="document_unreadable"' in empty.text
    over = _upload(client, name="big.txt", body=b"a" * 3000)  # over 2 KiB, within the form's envelope
    assert over.status_code == 413 and 'data-code="payload_too_large"' in over.text and "2 KB" in over.text
    # declared far over the limit: refused from the Content-Length, before the body is read
    declared = _upload(client, name="huge.txt", body=b"a" * 200_000)
    assert declared.status_code == 413 and "上传上限" in declared.text and 'role="alert"' in declared.text
    no_file = client.post("/knowledge/documents", data={"type": "guideline"}, follow_redirects=False)
    assert no_file.status_code == 422 and "file_missing" in no_file.text
    assert not _task_dirs()


def test_the_upload_route_takes_bodies_over_the_general_limit_and_other_routes_do_not(
    monkeypatch: pytest.MonkeyPatch, seeded: list[PatientChart]
) -> None:
    monkeypatch.setenv("MEDFUSION_MAX_REQUEST_BYTES", "4096")
    monkeypatch.setenv("MEDFUSION_KB_UPLOAD_MAX_BYTES", str(1024 * 1024))
    get_settings.cache_clear()
    body = ("# 大文件\n" + "高血压患者应每日监测血压。" * 2000).encode()  # ~78 KB
    with TestClient(create_app(get_settings())) as client:
        _login(client, "admin")
        assert _upload(client, name="big.md", body=body).status_code == 303
        token = client.post("/api/auth/token", data={"username": "admin", "password": PASSWORD}).json()
        api = client.post(
            "/api/kb/documents",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            files={"file": ("big-api.md", body, "text/markdown")},
            data={"embed": "false"},
        )
        assert api.status_code == 201 and api.json()["chunks"] > 10
        other = client.post("/login", data={"username": "admin", "password": "x" * 90_000})
        assert other.status_code == 413 and other.json()["error"]["code"] == "payload_too_large"
        # a browser's form post over the limit gets the message as a page, not JSON
        page = client.post("/login", data={"username": "x" * 90_000}, headers={"Accept": "text/html"})
        assert page.status_code == 413 and 'role="alert"' in page.text and "payload_too_large" in page.text
        assert uploads.wait(120)


def test_an_expired_session_sends_the_upload_to_sign_in_and_stores_nothing(client: TestClient) -> None:
    response = _upload(client)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/knowledge"
    assert not _task_dirs() and not _actions("kb.upload")
    page = client.get("/static/knowledge.js").text  # the typed fields wait in sessionStorage meanwhile
    assert "sessionStorage.setItem" in page and "data-clear-draft" in page


def test_an_interrupted_task_is_shown_and_resumes_without_duplicating(client: TestClient) -> None:
    _login(client, "admin")
    root = _root()
    folder = root / ("a" * 32)
    folder.mkdir(parents=True)
    (folder / "htn.md").write_bytes("# 高血压\n## 随访\n血压控制不佳者每2周随访一次。".encode())
    now = datetime.now(UTC)
    stopped = uploads.UploadTask(
        id=folder.name,
        filename="htn.md",
        source="upload:htn.md",
        size=10,
        sha256="0" * 64,
        options=uploads.UploadOptions(embed=False),
        username="admin",
        role="admin",
        pid=os.getpid() + 100_000,  # another server process, whose heartbeat stopped
        created_at=now,
        updated_at=now,
        state=uploads.UploadState.reading,
    )
    (folder / "task.json").write_text(stopped.model_dump_json())
    page = client.get(f"/knowledge/tasks/{folder.name}")
    assert "已中断" in page.text and "继续导入" in page.text
    assert json.loads((folder / "task.json").read_text())["state"] == "interrupted"
    _login(client, "doctor")
    assert client.post(f"/knowledge/tasks/{folder.name}/resume").status_code == 403
    _login(client, "admin")
    assert client.post(f"/knowledge/tasks/{folder.name}/resume", follow_redirects=False).status_code == 303
    assert uploads.wait(60)
    assert uploads.task(root, folder.name).state is uploads.UploadState.completed
    assert client.post(f"/knowledge/tasks/{folder.name}/resume").status_code == 422  # only interrupted ones
    # a task another live process is working on (fresh heartbeat) is left alone
    busy = folder.with_name("b" * 32)
    busy.mkdir()
    (busy / "task.json").write_text(stopped.model_copy(update={"id": busy.name}).model_dump_json())
    (busy / "heartbeat").touch()
    assert uploads.task(root, busy.name).state is uploads.UploadState.reading
    assert client.get("/knowledge/tasks/" + "z" * 32).status_code == 404


def _ingest(text: str, source: str, title: str) -> str:
    kb = KnowledgeBase(get_database(get_settings()))
    return kb.ingest_text(
        text, DocumentMeta(source=source, title=title, doc_type=DocType.guideline)
    ).document_id


def test_search_marks_the_matched_spans_shows_the_source_and_links_to_the_cited_chunk(
    client: TestClient,
) -> None:
    text = "# 血脂管理\n## 随访\n服用他汀者4-6周复查血脂和肝功能。\n## 用药\n阿托伐他汀每晚睡前口服。"
    document_id = _ingest(text, "sop/lipid.md", "血脂管理SOP")
    _login(client, "nurse")
    page = client.get("/knowledge/search", params={"q": "他汀 肝功能"})
    assert page.status_code == 200
    items = [part.split("</li>", 1)[0] for part in page.text.split('<li id="ev-')[1:]]
    assert len(items) == 2
    first = next(item for item in items if "随访" in item)
    assert "<mark>他汀</mark>" in first and "<mark>肝功能</mark>" in first
    assert "sop/lipid.md" in first and "§ 血脂管理 &gt; 随访" in first and "融合分" in first
    start = text.index("服用")
    span = re.search(r"\[(\d+):(\d+)\]", first)
    assert (
        span is not None
        and int(span.group(1)) == start
        and text[start : int(span.group(2))].startswith("服用")
    )
    link = re.search(r'href="(/knowledge/documents/[^"]+)"', first)
    assert link is not None and link.group(1) == f"/knowledge/documents/{document_id}?page=1#c-{start}"
    chunk_page = client.get(link.group(1).split("#")[0])
    assert f'id="c-{start}"' in chunk_page.text and "未向量化" in chunk_page.text
    nothing = client.get("/knowledge/search", params={"q": "骨质疏松"})
    assert "没有找到与“骨质疏松”相关的内容" in nothing.text
    assert client.get("/knowledge/search", params={"q": "他汀", "source": "mine"}).status_code == 422


def test_highlights_merge_overlapping_terms_and_ignore_case() -> None:
    text = "Aspirin 与阿司匹林肠溶片：阿司匹林每日一次"
    spans = library.highlights(text, "aspirin 阿司匹林")
    assert [text[a:b] for a, b in spans] == ["Aspirin", "阿司匹林", "阿司匹林"]
    assert library.segments("abcdef", [(1, 3)]) == [("a", False), ("bc", True), ("def", False)]
    assert library.highlights("无关内容", "他汀") == []


def test_a_long_document_shows_its_chunks_page_by_page(client: TestClient) -> None:
    sections = "\n".join(
        f"## 随访要点{i}\n高血压患者第{i}次随访需测量血压并记录，编号{i}。" for i in range(1, 46)
    )
    document_id = _ingest("# 长文档\n" + sections, "long.md", "长文档")
    _login(client, "doctor")
    first = client.get(f"/knowledge/documents/{document_id}")
    assert first.text.count('class="kb-chunk"') == 20 and "第 1 / 3 页" in first.text
    third = client.get(f"/knowledge/documents/{document_id}", params={"page": 3})
    assert third.text.count('class="kb-chunk"') == 5 and "编号45。" in third.text
    assert "删除文档" not in first.text  # a doctor may read, not remove
    total = library.chunks(get_database(get_settings()), document_id, per_page=100)[1]
    assert total == 45
    assert client.get("/knowledge/documents/nope").status_code == 404


def test_removal_asks_first_then_deletes_like_the_api_and_is_audited(client: TestClient) -> None:
    document_id = _ingest("# 临时文档\n内容：过期的院内规范。", "upload:old.md", "临时文档")
    _login(client, "doctor")
    assert client.get(f"/knowledge/documents/{document_id}/remove").status_code == 403
    assert client.post(f"/knowledge/documents/{document_id}/remove").status_code == 403
    _login(client, "admin")
    confirm = client.get(f"/knowledge/documents/{document_id}/remove")
    assert confirm.status_code == 200 and "确认删除" in confirm.text and "不能撤销" in confirm.text
    assert (
        library.document(get_database(get_settings()), document_id).title == "临时文档"
    )  # asking removes nothing
    done = client.post(f"/knowledge/documents/{document_id}/remove", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/knowledge?removed=")
    assert "已删除文档「临时文档」" in client.get(done.headers["location"]).text
    assert client.get(f"/knowledge/documents/{document_id}").status_code == 404
    assert client.post(f"/knowledge/documents/{document_id}/remove").status_code == 404
    removed = [e for e in _actions("kb.delete") if e.outcome == "success"]
    assert [e.detail for e in removed] == [{"source": "upload:old.md", "surface": "web"}]
    assert {e.actor for e in _actions("kb.delete") if e.outcome == "denied"} == {"doctor"}


def test_packs_are_listed_with_their_review_status(packed_client: PackedClient) -> None:
    client = packed_client.client
    packed_client.headers("doctor")  # makes the account
    _login(client, "doctor", PackedClient.PASSWORD)
    page = client.get("/knowledge")
    assert page.status_code == 200
    packs_section = page.text.split('id="packs"', 1)[1]
    for name in ("starter-diseases", "drug-safety", "icd10-categories", "symptom-lexicon"):
        assert name in packs_section
    assert "待临床医生审核" in packs_section and "照录权威来源" in packs_section
    listing = client.get("/knowledge", params={"source": "pack:starter-diseases"}).text
    assert "知识包 starter-diseases" in listing and "（111 篇）" in listing
    api = client.get("/api/kb/packs", headers=packed_client.headers("doctor")).json()
    assert {p["name"]: p["review_status"] for p in api}["icd10-categories"] == "source_reproduced"


# --- second read (H9): long names, what a failed upload leaves behind, racing resumes, highlight offsets ---
def _folders() -> list[Path]:
    """Every task folder under the upload root, with or without a task record."""
    return [p for p in _root().glob("*") if p.is_dir() and p.name != "keys"] if _root().exists() else []


def test_a_long_chinese_file_name_is_shortened_to_fit_the_disk_and_keeps_its_type(client: TestClient) -> None:
    _login(client, "admin")
    name = "国家基层高血压防治管理指南" * 12 + ".md"  # 157 characters, 465 bytes: over NAME_MAX (255)
    response = _upload(client, name=name)
    assert response.status_code == 303, response.text[-2000:]
    assert uploads.wait(60)
    task = uploads.task(_root(), response.headers["location"].rsplit("/", 1)[1])
    assert task.state is uploads.UploadState.completed and task.filename.endswith(".md")
    assert len(task.filename.encode()) <= uploads.MAX_NAME_BYTES and name.startswith(task.filename[:-3])


def test_safe_name_cuts_the_stem_never_the_suffix() -> None:
    tricky = "a" * 196 + ".txt" + "b" * 50 + ".pdf"  # cutting the whole name at 200 would leave ".txt"
    kept = uploads.safe_name(tricky)
    assert (
        kept.endswith(".pdf")
        and len(kept.encode()) <= uploads.MAX_NAME_BYTES
        and tricky.startswith(kept[:-4])
    )
    cut = uploads.safe_name("指" * 300 + ".DOCX")
    assert cut.endswith(".DOCX") and len(cut.encode()) <= uploads.MAX_NAME_BYTES
    assert uploads.safe_name("C:\\Users\\me\\指南.pdf") == "指南.pdf"


def test_an_upload_that_fails_after_it_was_received_leaves_no_file_behind(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medfusion.api.deps import ApiProviders
    from medfusion.errors import DatabaseUnavailable

    _login(client, "admin")
    real = ApiProviders.knowledge
    calls = {"n": 0}

    def unavailable_once(self: ApiProviders) -> KnowledgeBase:
        calls["n"] += 1
        if calls["n"] == 1:
            raise DatabaseUnavailable("数据库暂不可用 database unavailable")
        return real(self)

    monkeypatch.setattr(ApiProviders, "knowledge", unavailable_once)
    failed = _upload(client)
    assert failed.status_code == 503 and 'data-code="database_unavailable"' in failed.text
    assert not _folders()  # the received copy was removed, not left orphaned without a task record
    # a malformed idempotency key is refused before the body is written to disk at all
    written: list[str] = []

    def receive(*args: object) -> uploads.Received:
        written.append("received")
        raise AssertionError("the body was written before the key was checked")

    monkeypatch.setattr(uploads, "receive", receive)
    bad = _upload(client, idempotency_key="../../etc")
    assert bad.status_code == 422 and "idempotency_key" in bad.text and not written and not _folders()


def test_a_failed_task_record_does_not_leave_a_task_that_looks_alive(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _login(client, "admin")

    def full(root: Path, task: uploads.UploadTask) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(uploads, "_write", full)
    with pytest.raises(OSError):
        _upload(client)
    assert uploads.wait(1.0)  # nothing is counted as queued or running in this process
    assert not _folders() and not _actions("kb.upload")


def test_two_resumes_at_once_run_the_interrupted_task_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _root()
    folder = root / ("c" * 32)
    folder.mkdir(parents=True)
    (folder / "htn.md").write_bytes("# 高血压\n## 随访\n血压控制不佳者每2周随访一次。".encode())
    now = datetime.now(UTC)
    stopped = uploads.UploadTask(
        id=folder.name,
        filename="htn.md",
        source="upload:htn.md",
        size=10,
        sha256="0" * 64,
        options=uploads.UploadOptions(embed=False),
        username="admin",
        role="admin",
        pid=os.getpid() + 100_000,
        created_at=now,
        updated_at=now,
        state=uploads.UploadState.interrupted,
    )
    (folder / "task.json").write_text(stopped.model_dump_json())
    enqueued: list[str] = []
    monkeypatch.setattr(uploads, "_enqueue", lambda root, task_id, kb, db: enqueued.append(task_id))
    real_task = uploads.task

    def slow_read(root: Path, task_id: str) -> uploads.UploadTask:
        found = real_task(root, task_id)
        time.sleep(0.3)  # both clicks read the task before either has queued it
        return found

    monkeypatch.setattr(uploads, "task", slow_read)
    kb = KnowledgeBase(get_database(get_settings()))
    db = get_database(get_settings())
    from medfusion.store.access import Principal

    outcomes: list[str] = []

    def resume() -> None:
        try:
            uploads.resume(root, folder.name, Principal("admin", "admin"), kb, db)
            outcomes.append("queued")
        except InvalidInput as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert enqueued == [folder.name] and sorted(outcomes) == ["not_resumable", "queued"]
    with uploads._owned_lock:
        uploads._owned.pop(folder.name, None)


def test_highlight_offsets_hold_when_lower_casing_changes_the_length() -> None:
    text = "İstanbul 指南：他汀类药物"  # "İ".lower() is two characters
    spans = library.highlights(text, "他汀")
    assert [text[a:b] for a, b in spans] == ["他汀"]
    mixed = "İSTANBUL istanbul"
    assert [mixed[a:b] for a, b in library.highlights(mixed, "istanbul")][-1] == "istanbul"
