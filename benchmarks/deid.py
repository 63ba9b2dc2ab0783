"""De-identification throughput and recall: MedFusion's analyzer vs Presidio's AnalyzerEngine configured as a
fair peer — its predefined pattern recognizers (e-mail, phone with CN added to its regions, credit card, IP,
URL, date) on a blank Chinese spaCy pipeline loaded from disk (nothing downloaded) — on the same corpus, in
the same run, each with its recall on the planted gold beside its speed. Presidio is also run hosting our
recognizers (``presidio_adapter``) to separate engine cost from recognizer quality."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from medfusion.evaluation.deid_gold import synthetic_notes
from medfusion.privacy import analyze
from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.metrics import score

PRESIDIO_TO_OURS = {
    "EMAIL_ADDRESS": EntityType.EMAIL,
    "PHONE_NUMBER": EntityType.PHONE,
    "CREDIT_CARD": EntityType.BANK_CARD,
    "IP_ADDRESS": EntityType.IP_ADDRESS,
    "URL": EntityType.URL,
    "DATE_TIME": EntityType.DATE,
}


def _presidio_engine(ours: bool) -> Any:
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        DateRecognizer,
        EmailRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
    )

    model_dir = Path(tempfile.mkdtemp(prefix="zh-blank-")) / "zh_blank"
    spacy.blank("zh").to_disk(model_dir)
    nlp_engine = SpacyNlpEngine(models=[{"lang_code": "zh", "model_name": str(model_dir)}])
    registry = RecognizerRegistry(supported_languages=["zh"])
    if ours:
        from medfusion.privacy.presidio_adapter import presidio_recognizers

        for recognizer in presidio_recognizers("zh"):
            registry.add_recognizer(recognizer)
    else:
        regions = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR", "CN")
        for recognizer in (
            EmailRecognizer(supported_language="zh"),
            PhoneRecognizer(supported_language="zh", supported_regions=regions),
            CreditCardRecognizer(supported_language="zh"),
            IpRecognizer(supported_language="zh"),
            UrlRecognizer(supported_language="zh"),
            DateRecognizer(supported_language="zh"),
        ):
            registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["zh"])


def _spans(results: list[Any], text: str, ours: bool) -> list[Span]:
    spans = []
    for r in results:
        kind = EntityType(r.entity_type) if ours else PRESIDIO_TO_OURS.get(r.entity_type)
        if kind is not None:
            spans.append(Span(r.start, r.end, kind, text[r.start : r.end], r.score, "presidio"))
    return spans


def run(residents: int = 400) -> dict[str, Any]:
    docs = synthetic_notes(residents, seed=2026)
    texts = [d[0] for d in docs]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    rows: dict[str, Any] = {"documents": len(docs), "megabytes": round(megabytes, 3)}

    def measure(name: str, detect: Any) -> None:
        detect(texts[0], ())  # warm up (Presidio's URL check tries a download once; offline it falls back)
        started = time.perf_counter()
        predicted = [detect(text, known) for text, _gold, known in docs]
        seconds = time.perf_counter() - started
        report = score((text, gold, pred) for (text, gold, _k), pred in zip(docs, predicted, strict=True))
        structured = {t.type: t.recall for t in report.per_type}
        rows[name] = {
            "seconds": round(seconds, 3),
            "mb_per_s": round(megabytes / seconds, 3),
            "docs_per_s": round(len(docs) / seconds, 1),
            "recall": report.overall_recall,
            "precision": report.overall_precision,
            "recall_per_type": structured,
        }
        print(f"  deid {name}: {rows[name]}", flush=True)

    measure("medfusion", lambda text, known: analyze(text, known))
    try:
        peer = _presidio_engine(ours=False)
        hosted = _presidio_engine(ours=True)
    except ImportError as exc:
        rows["presidio"] = {"skipped": f"presidio not installed: {exc}"}
        return rows
    measure(
        "presidio_pattern_recognizers",
        lambda text, known: _spans(peer.analyze(text, language="zh"), text, False),
    )
    measure(
        "presidio_engine_with_medfusion_recognizers",
        lambda text, known: _spans(hosted.analyze(text, language="zh"), text, True),
    )
    return rows
