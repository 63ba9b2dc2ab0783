"""Our recognizers inside any Presidio deployment: each becomes a ``presidio_analyzer.EntityRecognizer``
whose ``analyze`` calls our ``find``. Presidio is optional (``pip install presidio-analyzer``); MedFusion's
own analyzer does not need it. Entity names are ours (``ID_NUMBER``, ``PHONE`` …)."""

from __future__ import annotations

from typing import Any

from medfusion.privacy.recognizers import Context, Recognizer, default_recognizers
from medfusion.privacy.vocabulary import by_first_character, protected_terms


def presidio_recognizers(language: str = "zh", recognizers: list[Recognizer] | None = None) -> list[Any]:
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    terms = protected_terms()
    context = Context(protected=terms, protected_prefixes=by_first_character(terms))

    class MedFusionRecognizer(EntityRecognizer):  # type: ignore[misc,unused-ignore]
        def __init__(self, inner: Recognizer) -> None:
            self.inner = inner
            super().__init__(
                supported_entities=[inner.entity.value],
                name=f"medfusion.{inner.name}",
                supported_language=language,
            )

        def load(self) -> None:
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [
                RecognizerResult(span.type.value, span.start, span.end, span.score)
                for span in self.inner.find(text, context)
            ]

    return [MedFusionRecognizer(r) for r in (recognizers or default_recognizers())]
