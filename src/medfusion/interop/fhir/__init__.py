"""FHIR R4 (4.0.1) in and out, through fhir.resources' R4B models."""

from medfusion.interop.fhir.code_maps import CodeMapper, TableMapper
from medfusion.interop.fhir.export import bundle_for, chart_to_bundle
from medfusion.interop.fhir.importer import ImportIssue, ImportResult, Profile, bundle_to_charts
from medfusion.interop.fhir.raw import RawResource

__all__ = [
    "CodeMapper",
    "ImportIssue",
    "ImportResult",
    "Profile",
    "RawResource",
    "TableMapper",
    "bundle_for",
    "bundle_to_charts",
    "chart_to_bundle",
]
