from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from medfusion.knowledge.base import KnowledgeBase
from medfusion.knowledge.documents import DocType, DocumentMeta
from medfusion.settings import get_settings
from medfusion.store.database import get_database

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
