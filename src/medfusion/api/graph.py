"""/api/graph — the medical knowledge graph: neighbours, typed paths, diseases by symptoms, departments
and the conflict check (any signed-in role; a chart-based check goes through the audited patient service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from medfusion.api.deps import DB, CurrentPrincipal, KnowledgeGraph
from medfusion.graph.conflicts import ConflictChecker, ConflictReport
from medfusion.graph.model import Relation, split_terms
from medfusion.graph.queries import DiseaseCandidate
from medfusion.graph.store import Edge, Neighbour
from medfusion.store.patient_service import PatientService

router = APIRouter(prefix="/api/graph", tags=["graph 知识图谱"])
Names = Annotated[list[str], Field(default_factory=list, max_length=50)]


@router.get("/neighbours", response_model=list[Neighbour], summary="实体的邻居（每条带来源）")
def neighbours(
    graph: KnowledgeGraph,
    principal: CurrentPrincipal,
    name: Annotated[str, Query(min_length=1, max_length=200)],
    relation: Relation | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[Neighbour]:
    return graph.queries.neighbours(name, relation, limit=limit)


@router.get("/path", response_model=list[Edge], summary="两个实体之间的最短类型化路径")
def path(
    graph: KnowledgeGraph,
    principal: CurrentPrincipal,
    start: Annotated[str, Query(alias="from", min_length=1, max_length=200)],
    goal: Annotated[str, Query(alias="to", min_length=1, max_length=200)],
    max_hops: Annotated[int, Query(ge=1, le=4)] = 3,
) -> list[Edge]:
    return graph.queries.path(start, goal, max_hops=max_hops)


@router.get("/diagnose", response_model=list[DiseaseCandidate], summary="按症状排序的候选疾病（辅助）")
def diagnose(
    graph: KnowledgeGraph,
    principal: CurrentPrincipal,
    symptoms: Annotated[str, Query(min_length=1, max_length=500, description="逗号分隔")],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[DiseaseCandidate]:
    return graph.queries.diagnose(split_terms(symptoms), k=k)


class DepartmentVote(BaseModel):
    department: str
    votes: int


@router.get("/department", response_model=list[DepartmentVote], summary="疾病或症状对应的就诊科室")
def department(
    graph: KnowledgeGraph,
    principal: CurrentPrincipal,
    names: Annotated[str, Query(min_length=1, max_length=500, description="逗号分隔")],
) -> list[DepartmentVote]:
    return [
        DepartmentVote(department=d, votes=v) for d, v in graph.queries.departments_for(split_terms(names))
    ]


class CheckRequest(BaseModel):
    patient_id: str | None = Field(
        default=None, description="若给出，则读取该患者在用诊断、过敏和用药（经审计）"
    )
    conditions: Names
    allergies: Names
    drugs: Names
    procedures: Names


@router.post("/check", response_model=ConflictReport, summary="禁忌、相互作用与交叉过敏检查（需医生确认）")
def check(
    db: DB, graph: KnowledgeGraph, principal: CurrentPrincipal, request: CheckRequest
) -> ConflictReport:
    checker = ConflictChecker(graph)
    if request.patient_id:
        chart = PatientService(db, principal).chart(request.patient_id)
        return checker.check_chart(
            chart, request.drugs, request.procedures, request.conditions, request.allergies
        )
    return checker.check(request.conditions, request.allergies, request.drugs, request.procedures)
