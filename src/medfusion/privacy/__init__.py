"""Chinese clinical de-identification: detect identifiers, then tag, mask, pseudonymise or generalise them."""

from medfusion.privacy.analyzer import Analyzer, analyze
from medfusion.privacy.entities import EntityType, Span

__all__ = ["Analyzer", "EntityType", "Span", "analyze"]
