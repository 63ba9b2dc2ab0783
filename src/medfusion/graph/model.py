"""Entity and relation types of the medical knowledge graph, and the triple every importer produces."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field


class EntityType(StrEnum):
    disease = "disease"
    symptom = "symptom"
    sign = "sign"
    drug = "drug"
    drug_class = "drug_class"
    check = "check"
    lab_test = "lab_test"
    procedure = "procedure"
    department = "department"
    food = "food"
    body_part = "body_part"


# What a treated_by link may list under "常用药物": a procedure (光疗, CPAP) treats, but is no medicine.
MEDICINES = frozenset({EntityType.drug, EntityType.drug_class})


class Relation(StrEnum):
    has_symptom = "has_symptom"  # disease → symptom
    needs_check = "needs_check"  # disease → check
    treated_by = "treated_by"  # disease → drug
    belongs_to_department = "belongs_to_department"  # disease → department
    has_complication = "has_complication"  # disease → disease
    located_in = "located_in"  # disease → body part
    synonym_of = "synonym_of"  # alias → preferred name (same type)
    member_of = "member_of"  # drug → drug class, class → wider class, disease → wider condition
    uses_agent = "uses_agent"  # procedure → drug it administers (contrast media, anaesthetics)
    contraindicated_in = "contraindicated_in"  # drug/procedure → disease/condition
    interacts_with = "interacts_with"  # drug → drug (read both ways)
    cross_reacts_with = "cross_reacts_with"  # drug → drug (allergy; read both ways)
    not_with_food = "not_with_food"  # drug → food


class Severity(StrEnum):
    """One scale for every conflict; interactions and contraindications use the upper part, graded
    allergy cross-reactivity the lower (``negligible`` and ``none`` are reassurance, not alerts)."""

    contraindicated = "contraindicated"
    high = "high"
    major = "major"
    moderate = "moderate"
    caution = "caution"
    low = "low"
    minor = "minor"
    negligible = "negligible"
    none = "none"


SEVERITY_RANK = {s: i for i, s in enumerate(reversed(list(Severity)))}
NOT_AN_ALERT = {Severity.negligible, Severity.none}


# A stored name never holds a NUL: PostgreSQL's text type cannot, and SQLite must answer alike (store.py).
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]


class Triple(BaseModel):
    head: Name
    head_type: EntityType
    relation: Relation
    tail: Name
    tail_type: EntityType
    source: Name
    severity: Severity | None = None
    review_status: Text | None = None
    note: Text | None = None


class EntityCode(BaseModel):
    """A code and the synonyms an entity is known by, from a vocabulary file or a code list."""

    name: Name
    type: EntityType
    code_system: Text | None = None
    code: Text | None = None
    synonyms: list[Name] = Field(default_factory=list)


def entity_id(kind: EntityType | str, name: str) -> str:
    return hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:32]


def split_terms(value: str | None) -> list[str]:
    """A comma-separated list of names or codes as typed (ASCII or full-width commas), blanks dropped."""
    if not value:
        return []
    return [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
