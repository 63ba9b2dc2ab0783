"""Raw FHIR resources kept beside the record: every resource of an imported Bundle, as received.

What the record models is also kept as its record item; what it does not (Claim, CarePlan, an Observation
outside vital signs and labs, a value in a unit we do not convert …) lives only here. ``model_hash`` is the
hash of the record item made from the resource: on export, an item whose hash still matches is written back
as the raw resource, byte for byte, so a round trip changes nothing; an item edited since is exported from
the record.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field


def content_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def model_hash(item: BaseModel) -> str:
    return content_hash(item.model_dump(mode="json"))


class RawResource(BaseModel):
    patient_id: str | None = Field(description="the chart it belongs to; None when no Patient is known")
    resource_type: str
    resource_id: str
    body: dict[str, Any]
    model_hash: str | None = Field(default=None, description="hash of the record item; None: raw only")
    version: int | None = Field(default=None, description="set when read from the store")
