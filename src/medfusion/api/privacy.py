"""/api/privacy — de-identify a text or a whole record (``privacy:deid``: doctors, public health, admins).

Request bodies hold patient data, so every call is audited (counts only, never the text) and nothing is
stored. ``pseudo`` uses the project key under ``MEDFUSION_DATA_DIR/privacy/project.key``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from medfusion.api.deps import DB, AppSettings, requires
from medfusion.errors import InvalidInput
from medfusion.privacy.operators import Mode
from medfusion.privacy.pseudonyms import Pseudonymizer, create_key, load_key
from medfusion.privacy.records import DeidChart, deidentify_chart
from medfusion.privacy.service import ENGINE, Deidentifier, DeidText
from medfusion.record.models import PatientChart
from medfusion.settings import Settings
from medfusion.store import audit
from medfusion.store.access import Permission, Principal

router = APIRouter(prefix="/api/privacy", tags=["privacy 去标识化"])
Deidentifying = Annotated[
    Principal,
    Depends(requires(Permission.privacy_deid, "privacy.deid", "需要去标识化权限 privacy:deid required")),
]


class DeidRequest(BaseModel):
    text: str | None = Field(default=None, max_length=1_000_000)
    record: PatientChart | None = None
    mode: Mode = Mode.tag
    known_names: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _one_input(self) -> DeidRequest:
        if (self.text is None) == (self.record is None):
            raise ValueError("text 与 record 须且仅须提供一个 (exactly one of text, record)")
        return self


class DeidResponse(BaseModel):
    text: DeidText | None = None
    record: DeidChart | None = None
    status: str = "draft"
    provenance: dict[str, str] = {"path": "specialist", "engine": ENGINE}


def project_key(settings: Settings) -> bytes:
    path = settings.resolved_data_dir / "privacy" / "project.key"
    return load_key(path) if path.exists() else create_key(path)


@router.post("/deid", response_model=DeidResponse, summary="去标识化文本或整份病历")
def deidentify(body: DeidRequest, db: DB, settings: AppSettings, principal: Deidentifying) -> DeidResponse:
    if body.record is not None:
        if body.mode is not Mode.pseudo:
            raise InvalidInput.for_field(
                "mode", "整份病历只支持 pseudo 模式 records are pseudonymised (mode=pseudo)"
            )
        record = deidentify_chart(body.record, Pseudonymizer(project_key(settings)))
        response = DeidResponse(record=record)
        counts = record.counts
    else:
        key = project_key(settings) if body.mode is Mode.pseudo else None
        text = Deidentifier(body.mode, key).text(body.text or "", body.known_names)
        response = DeidResponse(text=text)
        counts = text.counts
    with db.session() as session:
        audit.record(
            session,
            principal.actor,
            "privacy.deid",
            detail={"mode": body.mode.value, "kind": "record" if body.record else "text", "counts": counts},
        )
    return response
