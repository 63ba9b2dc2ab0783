"""Training data from clinician feedback, in the JSONL forms common trainers read (e.g. TRL):

- **DPO** preference pairs ``{"prompt", "chosen", "rejected"}``: an edit gives (edited, draft); a rejected
  draft and an accepted or edited draft for the same prompt give (accepted, rejected).
- **SFT** conversations ``{"messages": [{"role": "user", …}, {"role": "assistant", …}]}`` from accepted drafts
  and from edits (the edited text).

Prompts and answers are de-identified (type tags) by default — training data leaves the clinical system;
``keep_identifiers`` is for an in-hospital trainer only. The export is audited.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select

from medfusion.errors import PermissionDenied
from medfusion.privacy.entities import EntityType
from medfusion.privacy.service import Deidentifier
from medfusion.store import audit
from medfusion.store.access import Permission, Principal
from medfusion.store.database import Database
from medfusion.store.tables import FeedbackRow

Format = Literal["dpo", "sft"]


class ExportReport(BaseModel):
    format: Format
    rows: int
    acts: int
    deidentified: bool
    path: str


_MARKS = re.compile(r"\[[KGPRS]\d+(?:[,，][KGPRS]\d+)*\]")


def _plain(text: str) -> str:
    """Citation marks ([K1]) mean nothing without the evidence they point to: dropped."""
    return _MARKS.sub("", text).strip()


def _key(prompt: str) -> str:
    return "".join(prompt.split()).rstrip("？?。")


def build(rows: list[FeedbackRow], fmt: Format) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if fmt == "sft":
        for r in rows:
            if r.action in {"accept", "edit"}:
                answer = _plain(r.edited if r.action == "edit" and r.edited else r.draft)
                out.append(
                    {
                        "messages": [
                            {"role": "user", "content": r.prompt},
                            {"role": "assistant", "content": answer},
                        ]
                    }
                )
        return out
    good: dict[str, list[str]] = defaultdict(list)
    bad: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in rows:
        key = _key(r.prompt)
        draft, edited = _plain(r.draft), _plain(r.edited or "")
        if r.action == "edit" and edited and edited != draft:
            out.append({"prompt": r.prompt, "chosen": edited, "rejected": draft})
            good[key].append(edited)
        elif r.action == "accept":
            good[key].append(draft)
        elif r.action == "reject":
            bad[key].append((r.prompt, draft))
    for key, rejected in bad.items():
        for prompt, draft in rejected:
            for chosen in dict.fromkeys(good.get(key, [])):
                if chosen.strip() != draft.strip():
                    out.append({"prompt": prompt, "chosen": chosen, "rejected": draft})
    return out


def export(
    db: Database, principal: Principal, fmt: Format, path: Path, keep_identifiers: bool = False
) -> ExportReport:
    if not principal.may(Permission.privacy_deid) or (
        keep_identifiers and principal.role not in {"admin", "system"}
    ):
        raise PermissionDenied(
            "无权导出训练数据 exporting training data needs privacy:deid (identifiers: admin)"
        )
    with db.session() as session:
        rows = list(session.scalars(select(FeedbackRow).order_by(FeedbackRow.id)))
        records = build(rows, fmt)
        if not keep_identifiers:
            deid = Deidentifier()
            records = [_deidentified(r, deid) for r in records]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        audit.record(
            session,
            principal.actor,
            f"feedback.export.{fmt}",
            audit.Outcome.success,
            detail={"rows": len(records), "acts": len(rows), "deidentified": not keep_identifiers},
        )
    return ExportReport(
        format=fmt, rows=len(records), acts=len(rows), deidentified=not keep_identifiers, path=str(path)
    )


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _deidentified(record: dict[str, object], deid: Deidentifier) -> dict[str, object]:
    """A name found anywhere in the record (患者张建国 in the prompt) is an identifier everywhere in it
    (张建国 alone in the answer, where no context word marks it)."""
    names = {
        span.text for text in _strings(record) for span in deid.spans(text) if span.type is EntityType.PERSON
    }

    def clean(value: object) -> object:
        if isinstance(value, str):
            return deid.text(value, known_names=names).text
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k == "role" else clean(v)) for k, v in value.items()}
        return value

    return {k: clean(v) for k, v in record.items()}
