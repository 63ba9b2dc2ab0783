"""Entity and relation types of the medical knowledge graph, and the triple every importer produces."""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel


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


class Relation(StrEnum):
    has_symptom = "has_symptom"  # disease → symptom
    needs_check = "needs_check"  # disease → check
    treated_by = "treated_by"  # disease → drug
    belongs_to_department = "belongs_to_department"  # disease → department
    has_complication = "has_complication"  # disease → disease
    located_in = "located_in"  # disease → body part
    synonym_of = "synonym_of"  # alias → preferred name (same type)
    contraindicated_in = "contraindicated_in"  # drug → disease/condition
    interacts_with = "interacts_with"  # drug → drug
    cross_reacts_with = "cross_reacts_with"  # drug → drug (allergy)
    not_with_food = "not_with_food"  # drug → food


class Triple(BaseModel):
    head: str
    head_type: EntityType
    relation: Relation
    tail: str
    tail_type: EntityType
    source: str
    severity: str | None = None


def entity_id(kind: EntityType | str, name: str) -> str:
    return hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:32]
