"""Cited answers: retrieval (RAG) fused with graph facts (KAG), every sentence carrying its citation ids.

The specialist path is extractive — it never writes a sentence that is not in a cited passage or a sourced
triple: the question's entities are found in the graph; passages are retrieved (hybrid search) and their
sentences ranked by overlap with the question; graph facts the question asks for (department, symptoms,
checks, treatment) and, when drugs are named, a conflict check against the patient context are added. When
confidence is low, a second retrieval round runs with the query expanded by graph synonyms (发热 ↔ 发烧)
and, for a set of symptoms, the diseases the graph ranks first; the two rounds are fused by rank.

The general model drafts from this answer's evidence in :mod:`medfusion.apps.ask.service` (``medfusion ask``),
where the guardrails check its sentences against the same evidence. Every answer names the path that
produced it and is assistive (``status: needs_clinician_confirmation``).
"""

from __future__ import annotations

import re
from collections import defaultdict

from pydantic import BaseModel, Field

from medfusion.contract import AnswerSentence, Evidence
from medfusion.graph import Graph
from medfusion.graph.conflicts import ConflictChecker
from medfusion.graph.lexicon import Mention
from medfusion.graph.model import EntityType, Relation
from medfusion.knowledge import tokens
from medfusion.knowledge.base import DENSE_WEIGHT, KnowledgeBase, SearchFilters
from medfusion.knowledge.documents import Hit
from medfusion.knowledge.expansion import synonym_terms
from medfusion.knowledge.fusion import RRF_K, ordered, rrf

SPECIALIST = "specialist: extractive retrieval + knowledge graph"
LOW_CONFIDENCE = 0.35
MIN_OVERLAP = 0.15
MAX_SENTENCES = 4
_SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?")
# what the question asks of the graph: intent words → relation
_INTENTS = {
    Relation.belongs_to_department: ("科室", "挂什么科", "挂哪个科", "看什么科", "哪个科"),
    Relation.has_symptom: ("症状", "表现", "征兆"),
    Relation.needs_check: ("检查", "化验", "查什么", "诊断"),
    Relation.treated_by: ("治疗", "用药", "吃什么药", "药物", "怎么治"),
}


class PatientContext(BaseModel):
    conditions: list[str] = Field(default_factory=list, max_length=50)
    allergies: list[str] = Field(default_factory=list, max_length=50)
    medications: list[str] = Field(default_factory=list, max_length=50)

    def text(self) -> str:
        """One line for prompts and grounding: 诊断：…；过敏：…；在用药：…"""
        parts = [
            f"诊断：{'、'.join(self.conditions)}" if self.conditions else "",
            f"过敏：{'、'.join(self.allergies)}" if self.allergies else "",
            f"在用药：{'、'.join(self.medications)}" if self.medications else "",
        ]
        return "；".join(p for p in parts if p)


class Answer(BaseModel):
    question: str
    sentences: list[AnswerSentence]
    evidence: list[Evidence]
    confidence: float
    rounds: int
    expanded_terms: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    engine: str = SPECIALIST
    status: str = "needs_clinician_confirmation"


def _sentences(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group().strip()) for m in _SENTENCE.finditer(text) if len(m.group().strip()) >= 4]


def _overlap(question: set[str], sentence: str) -> float:
    grams = set(tokens.bigrams(sentence))
    return len(question & grams) / max(len(question), 1)


class Answerer:
    def __init__(self, kb: KnowledgeBase, graph: Graph) -> None:
        self.kb = kb
        self.graph = graph

    def _expansions(self, question: str, mentions: list[Mention]) -> list[str]:
        terms = synonym_terms(self.graph, question, mentions=mentions)
        symptoms = [m.entity.name for m in mentions if m.entity.type == EntityType.symptom.value]
        if len(symptoms) >= 2:
            terms += [
                c.disease
                for c in self.graph.queries.rank_by_symptom_overlap(symptoms, k=2)
                if c.disease not in terms
            ]
        return terms[:12]

    def answer(
        self,
        question: str,
        patient_context: PatientContext | None = None,
        k: int = 5,
        filters: SearchFilters | None = None,
    ) -> Answer:
        question = question.strip()
        mentions = self.graph.lexicon.mentions(question)
        hits = self.kb.search(question, k=k, filters=filters)
        if filters is None:
            hits = _merge(self._sections(question, mentions), hits, k)
        confidence = self._confidence(question, hits)
        rounds, expanded = 1, []
        if confidence < LOW_CONFIDENCE:
            expanded = self._expansions(question, mentions)
            if expanded:
                rounds = 2
                second = self.kb.search(question, k=k, filters=filters, expansions=expanded)
                hits = _fuse([hits, second], k)
                confidence = max(confidence, self._confidence(question, hits, extra=expanded))
        evidence: list[Evidence] = []
        draft = self._passage_sentences(question, expanded, hits, evidence)
        draft += self._graph_sentences(question, mentions, patient_context, evidence)
        return Answer(
            question=question,
            sentences=draft,
            evidence=evidence,
            confidence=round(confidence, 3),
            rounds=rounds,
            expanded_terms=expanded,
            entities=sorted({f"{m.entity.type}:{m.entity.name}" for m in mentions}),
        )

    def _sections(self, question: str, mentions: list[Mention]) -> list[Hit]:
        """A question about a named disease and what its guideline section covers (治疗, 检查, 症状) gets
        that section looked up, not only ranked: "高血压的一线治疗" reads 原发性高血压 > 一线治疗 even when
        the words also match other diseases' treatment sections better."""
        headings = [h for rel, h in _SECTION_OF.items() if any(w in question for w in _INTENTS[rel])]
        diseases = list(
            dict.fromkeys(m.entity.name for m in mentions if m.entity.type == EntityType.disease.value)
        )
        found: list[Hit] = []
        for disease in diseases[:2]:
            for heading in headings:
                found += self.kb.in_section(disease, heading, k=1)
        return found

    def _confidence(self, question: str, hits: list[Hit], extra: list[str] | None = None) -> float:
        """Mostly how much of the question the best sentence of the top passages covers, partly how
        strongly the channels agree on the top passage (rank agreement alone is high even for nonsense)."""
        if not hits:
            return 0.0
        agreement = min(hits[0].score / ((2 + DENSE_WEIGHT) / (RRF_K + 1)), 1.0)
        wanted = set(tokens.bigrams(question))
        best = max((_overlap(wanted, s) for hit in hits[:3] for _, s in _sentences(hit.text)), default=0.0)
        return 0.3 * agreement + 0.7 * best

    def _passage_sentences(
        self, question: str, expanded: list[str], hits: list[Hit], evidence: list[Evidence]
    ) -> list[AnswerSentence]:
        wanted = set(tokens.bigrams(question)) | {g for t in expanded for g in tokens.bigrams(t)}
        scored: list[tuple[float, int, int, str]] = []
        for rank, hit in enumerate(hits):
            heading = hit.citation.section.rsplit(" > ", 1)[-1]
            if heading in _NOT_ANSWERS:
                continue
            # a sentence under a heading the question names ("一线治疗", "关键检查") answers it best
            topical = _overlap(set(tokens.bigrams(heading)), question) if heading else 0.0
            for offset, sentence in _sentences(hit.text):
                if sentence.lstrip("#").strip() == heading:
                    continue
                score = _overlap(wanted, sentence) + 0.3 * topical + 0.05 / (rank + 1)
                if score >= MIN_OVERLAP:
                    scored.append((score, rank, offset, sentence))
        chosen = sorted(scored, key=lambda s: -s[0])[:MAX_SENTENCES]
        ids: dict[int, str] = {}
        sentences: list[AnswerSentence] = []
        seen: set[str] = set()
        for _, rank, offset, sentence in sorted(chosen, key=lambda s: (s[1], s[2])):
            if sentence in seen:
                continue
            seen.add(sentence)
            hit = hits[rank]
            if rank not in ids:
                ids[rank] = f"K{len(ids) + 1}"
                evidence.append(
                    Evidence(
                        id=ids[rank],
                        kind="passage",
                        text=hit.text,
                        source=hit.source,
                        citation=hit.citation,
                        authority=hit.authority.value,
                        chunk_id=hit.chunk_id,
                    )
                )
            start = hit.citation.start + offset
            location = hit.citation.model_copy(update={"start": start, "end": start + len(sentence)})
            sentences.append(AnswerSentence(text=sentence, citations=[ids[rank]], location=location))
        return sentences

    def _graph_sentences(
        self,
        question: str,
        mentions: list[Mention],
        context: PatientContext | None,
        evidence: list[Evidence],
    ) -> list[AnswerSentence]:
        sentences: list[AnswerSentence] = []

        def cite(text: str, source: str, review_status: str | None) -> str:
            key = f"G{sum(1 for e in evidence if e.kind == 'graph') + 1}"
            evidence.append(
                Evidence(id=key, kind="graph", text=text, source=source, review_status=review_status)
            )
            return key

        asked = [rel for rel, words in _INTENTS.items() if any(w in question for w in words)]
        asked = asked or [Relation.belongs_to_department]
        symptoms = list({m.entity.name: m for m in mentions if m.entity.type == EntityType.symptom.value})
        # a word that names both a symptom and a disease (咳嗽 is also ICD-10 R05) is read as the symptom —
        # unless the question asks how to treat or check it (高血压的一线治疗 is about the disease)
        about_disease = any(
            w in question for rel in (Relation.treated_by, Relation.needs_check) for w in _INTENTS[rel]
        )
        as_symptom = (
            set()
            if about_disease
            else {m.surface for m in mentions if m.entity.type == EntityType.symptom.value}
        )
        diseases = list(
            {
                m.entity.name: m
                for m in mentions
                if m.entity.type == EntityType.disease.value and m.surface not in as_symptom
            }
        )
        if symptoms and not diseases:
            # a set of symptoms: the diseases the graph ranks first, and where to see a doctor
            for candidate in self.graph.queries.rank_by_symptom_overlap(symptoms, k=3):
                where = f"，就诊科室：{'、'.join(candidate.departments)}" if candidate.departments else ""
                text = f"症状{'、'.join(candidate.supporting)}提示的可能疾病：{candidate.disease}{where}。"
                support = self.graph.queries.neighbours(candidate.disease, Relation.has_symptom, limit=1)
                source = support[0].source if support else "knowledge graph"
                review = support[0].review_status if support else None
                sentences.append(AnswerSentence(text=text, citations=[cite(text, source, review)]))
        for disease in diseases[:2]:
            for relation in asked:
                found = [
                    n
                    for n in self.graph.queries.neighbours(disease, relation, limit=50)
                    if n.direction == "out"
                ]
                if not found:
                    continue
                by_source: dict[str, list[str]] = defaultdict(list)
                for n in found:
                    by_source[n.source].append(n.name)
                for source, names in list(by_source.items())[:2]:
                    text = f"{disease}的{_LABEL[relation]}：{'、'.join(dict.fromkeys(names[:8]))}。"
                    review = next((n.review_status for n in found if n.source == source), None)
                    sentences.append(AnswerSentence(text=text, citations=[cite(text, source, review)]))
        drugs = [m.entity.name for m in mentions if m.entity.type in {"drug", "drug_class"}]
        if drugs and (context is not None or len(drugs) >= 2):
            context = context or PatientContext()
            report = ConflictChecker(self.graph).check(
                context.conditions, context.allergies, [*context.medications, *drugs]
            )
            for conflict in report.conflicts[:5]:
                text = conflict.sentence()
                sentences.append(
                    AnswerSentence(text=text, citations=[cite(text, conflict.source, conflict.review_status)])
                )
            if not report.conflicts:
                # a checked negative is information too — stated with its limits, never as "safe"
                checked = "、".join(dict.fromkeys(drugs))
                charted = context.model_dump(exclude_defaults=True)
                against = "当前诊断、过敏和在用药物" if charted else "彼此之间"
                text = (
                    f"药物安全规则中未发现{checked}与{against}的已知禁忌或相互作用"
                    "（规则覆盖有限，需医生确认）。"
                )
                sentences.append(AnswerSentence(text=text, citations=[cite(text, NO_CONFLICT_SOURCE, None)]))
        return sentences


NO_CONFLICT_SOURCE = "conflict check over the installed drug-safety rules (medfusion.graph.conflicts)"
_NOT_ANSWERS = {"出处", "参考文献", "References", "references"}
_LABEL = {
    Relation.belongs_to_department: "就诊科室",
    Relation.has_symptom: "主要症状",
    Relation.needs_check: "关键检查",
    Relation.treated_by: "常用药物",
}


_SECTION_OF = {Relation.treated_by: "治疗", Relation.needs_check: "检查", Relation.has_symptom: "症状"}


def _merge(first: list[Hit], rest: list[Hit], k: int) -> list[Hit]:
    """Looked-up sections first, then the ranked hits, each passage once."""
    seen: set[str] = set()
    merged = []
    for hit in [*first, *rest]:
        if hit.chunk_id not in seen:
            seen.add(hit.chunk_id)
            merged.append(hit)
    return merged[: max(k, len(first))]


def _fuse(rounds: list[list[Hit]], k: int) -> list[Hit]:
    """The retrieval rounds fused by reciprocal rank, equal weights; each passage as first retrieved."""
    score = rrf(([hit.chunk_id for hit in hits], 1.0) for hits in rounds)
    first: dict[str, Hit] = {}
    for hits in rounds:
        for hit in hits:
            first.setdefault(hit.chunk_id, hit)
    return [first[c].model_copy(update={"score": round(score[c], 6)}) for c in ordered(score)[:k]]
