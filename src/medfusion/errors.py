"""One error hierarchy: every failure a user can cause has a stable code and an HTTP status.

Surfaces map these to ``{"error": {"code", "message", "details"}}`` (API) or a one-line message and a
non-zero exit (CLI).
"""

from __future__ import annotations

from typing import Any, Self


class MedFusionError(Exception):
    code = "medfusion_error"
    status_code = 400
    # ids and field names (never values) for the audit entry of a refusal; not sent to the client
    audit_detail: dict[str, Any] | None = None

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(MedFusionError):
    """A value failed validation; ``details`` lists ``{"field", "message"}`` entries."""

    code = "invalid_input"
    status_code = 422

    @classmethod
    def for_field(cls, field: str, message: str, code: str | None = None) -> Self:
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}], code=code)


class InvalidIdNumber(InvalidInput):
    code = "invalid_id_number"


class UnknownUnit(InvalidInput):
    code = "unknown_unit"


class InvalidFhir(InvalidInput):
    code = "invalid_fhir"


class UnsupportedFhirVersion(InvalidFhir):
    code = "unsupported_fhir_version"


class NotFound(MedFusionError):
    code = "not_found"
    status_code = 404


class Conflict(MedFusionError):
    code = "conflict"
    status_code = 409


class PatientIdentityConflict(Conflict):
    """An incoming patient's identity differs from the stored record it would land on (same id, other
    name / birth date / sex / 身份证号 / identifier), or its 身份证号 belongs to another record."""

    code = "patient_identity_conflict"


class ChartResourceConflict(Conflict):
    """An incoming resource has the id of a stored one but other content; it is not overwritten."""

    code = "chart_resource_conflict"


class AuthenticationFailed(MedFusionError):
    code = "authentication_failed"
    status_code = 401


class AccountLocked(MedFusionError):
    code = "account_locked"
    status_code = 429


class PermissionDenied(MedFusionError):
    code = "permission_denied"
    status_code = 403


class PayloadTooLarge(MedFusionError):
    code = "payload_too_large"
    status_code = 413


class UnsupportedMediaType(MedFusionError):
    code = "unsupported_media_type"
    status_code = 415


class AuditChainBroken(MedFusionError):
    code = "audit_chain_broken"
    status_code = 409


class DatabaseUnavailable(MedFusionError):
    code = "database_unavailable"
    status_code = 503


class InvalidAppSpec(MedFusionError):
    """An installed app's ``APP`` is malformed: raised at start-up, naming the app and the field."""

    code = "invalid_app_spec"
    status_code = 500


class EventRelayUnavailable(MedFusionError):
    """The configured event relay (``MEDFUSION_EVENTS_RELAY``, NATS JetStream) cannot be reached."""

    code = "event_relay_unavailable"
    status_code = 503


class MigrationFailed(MedFusionError):
    """A schema migration would leave the database inconsistent (e.g. rows whose foreign keys point nowhere):
    it is rolled back and nothing is changed."""

    code = "migration_failed"
    status_code = 500
