from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from medfusion.knowledge.base import KnowledgeBase
from medfusion.knowledge.documents import DocType, DocumentMeta
from medfusion.settings import get_settings
from medfusion.store.database import get_database
from tests.conftest import PackedClient

Auth = Callable[[str], dict[str, str]]


def test_kb_search_returns_cited_hits_for_any_signed_in_role(client: TestClient, auth: Auth) -> None:
    KnowledgeBase(get_database(get_settings())).ingest_text(
        "## 用药\n阿托伐他汀每晚睡前口服，注意监测肝功能。\n## 随访\n每3个月复查血脂。",
        DocumentMeta(source="sop/lipid.md", title="血脂管理SOP", doc_type=DocType.hospital_sop),
    )
    for role in ("patient", "nurse"):
        response = client.get("/api/kb/search", headers=auth(role), params={"q": "他汀 肝功能", "k": 3})
        assert response.status_code == 200
        hits = response.json()
        assert hits and hits[0]["source"] == "sop/lipid.md" and hits[0]["citation"]["section"] == "用药"
    filtered = client.get("/api/kb/search", headers=auth("doctor"), params={"q": "血脂", "type": "faq"})
    assert filtered.status_code == 200 and filtered.json() == []
    assert client.get("/api/kb/search", params={"q": "x"}).status_code == 401
    assert client.get("/api/kb/search", headers=auth("doctor"), params={"q": ""}).status_code == 422


def test_upload_update_and_remove_documents_are_guarded_and_audited(client: TestClient, auth: Auth) -> None:
    admin = auth("admin")
    guide = "# 血脂管理\n## 随访\n服用他汀者4-6周复查血脂和肝功能。".encode()
    files = {"file": ("lipid.md", guide, "text/markdown")}
    created = client.post("/api/kb/documents", headers=admin, files=files, data={"type": "hospital_sop"})
    assert created.status_code == 201 and created.json()["status"] == "added"
    assert created.json()["source"] == "upload:lipid.md"
    again = client.post(
        "/api/kb/documents", headers=admin, files={"file": ("lipid.md", guide, "text/markdown")}
    )
    assert again.json()["status"] == "unchanged"
    hits = client.get("/api/kb/search", headers=auth("nurse"), params={"q": "他汀 复查"}).json()
    assert hits[0]["source"] == "upload:lipid.md"
    denied = client.post("/api/kb/documents", headers=auth("doctor"), files=files)
    assert denied.status_code == 403
    for name, body in (("broken.pdf", b"%PDF-1.4 not really"), ("empty.txt", b""), ("x.exe", b"MZ")):
        bad = client.post("/api/kb/documents", headers=admin, files={"file": (name, body)})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "document_unreadable", name
    assert (
        client.delete("/api/kb/documents", headers=admin, params={"source": "upload:lipid.md"}).status_code
        == 204
    )
    assert (
        client.delete("/api/kb/documents", headers=admin, params={"source": "upload:lipid.md"}).status_code
        == 404
    )
    actions = [
        e["action"] for e in client.get("/api/audit", headers=auth("auditor"), params={"limit": 500}).json()
    ]
    assert "kb.ingest" in actions and "kb.delete" in actions
    assert client.get("/api/kb/packs", headers=auth("patient")).status_code == 200


def test_upload_embeds_and_search_filters_by_source(packed_client: PackedClient) -> None:
    admin = packed_client.headers("admin")
    text = "高血压患者居家自测血压：每天早晚各测一次，测前静坐5分钟，连续测量7天，记录血压日记。".encode()
    files = {"file": ("htn-home.txt", text, "text/plain")}
    created = packed_client.client.post("/api/kb/documents", headers=admin, files=files)
    assert created.status_code == 201 and created.json()["embedded"] == 1
    deferred = packed_client.client.post(
        "/api/kb/documents",
        headers=admin,
        files={"file": ("dm-foot.txt", "糖尿病患者每天检查双脚有无破损、水泡。".encode(), "text/plain")},
        data={"embed": "false"},
    )
    assert deferred.status_code == 201 and deferred.json()["embedded"] == 0
    nurse = packed_client.headers("nurse")
    for query, source in (
        ("高血压患者在家怎么自测血压", "upload:htn-home.txt"),
        ("糖尿病患者双脚检查", "upload:dm-foot.txt"),
    ):
        hits = packed_client.client.get("/api/kb/search", headers=nurse, params={"q": query, "k": 5}).json()
        assert hits[0]["source"] == source, query
    own = packed_client.client.get("/api/kb/search", headers=nurse, params={"q": "高血压", "source": "own"})
    assert own.status_code == 200 and {h["source"] for h in own.json()} <= {
        "upload:htn-home.txt",
        "upload:dm-foot.txt",
    }
    pack = packed_client.client.get(
        "/api/kb/search", headers=nurse, params={"q": "高血压", "source": "pack:starter-diseases"}
    ).json()
    assert pack and all(h["source"].startswith("pack:starter-diseases") for h in pack)
    bad = packed_client.client.get("/api/kb/search", headers=nurse, params={"q": "高血压", "source": "mine"})
    assert bad.status_code == 422


def test_an_api_upload_with_a_long_or_bare_dot_name_is_stored_or_refused_never_a_500(
    client: TestClient, auth: Auth
) -> None:
    admin = auth("admin")
    body = "# 高血压\n## 随访\n血压控制不佳者每2周随访一次。".encode()
    name = "国家基层高血压防治管理指南" * 12 + ".md"  # 465 bytes: over the file system's 255
    created = client.post(
        "/api/kb/documents", headers=admin, files={"file": (name, body)}, data={"embed": "false"}
    )
    assert created.status_code == 201, created.text
    source = created.json()["source"]
    assert source.startswith("upload:国家基层") and source.endswith(".md") and len(source.encode()) < 255
    for bare in (".", ".."):
        refused = client.post("/api/kb/documents", headers=admin, files={"file": (bare, body)})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "file_missing", bare
