"""FHIR R4 (4.0.1) in and out, through fhir.resources' R4B models."""

from medfusion.interop.fhir.export import bundle_for, chart_to_bundle
from medfusion.interop.fhir.importer import ImportIssue, ImportResult, bundle_to_charts

__all__ = ["ImportIssue", "ImportResult", "bundle_for", "bundle_to_charts", "chart_to_bundle"]
