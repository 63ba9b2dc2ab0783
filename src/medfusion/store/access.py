"""Roles and what each may do — the permission table, kept as data.

Minimum necessary (GB/T 39725-2020 §6, access control for health data): clinicians read and write charts;
managers see lists for operations, not charts; auditors see the audit log, not patient data; a patient
sees only the record their account is linked to. What each role sees *of* a patient (identifiers masked,
de-identified) is the display policy, ``store/display_policy.toml``; ``identifier:reveal`` is the right to see
the full identifiers on a chart, each time as an audited ``patient.reveal``.
"""

from __future__ import annotations

from enum import StrEnum

from medfusion.store import audit


class Role(StrEnum):
    doctor = "doctor"
    nurse = "nurse"
    manager = "manager"
    public_health = "public_health"
    patient = "patient"
    auditor = "auditor"
    admin = "admin"


ROLE_LABELS = {
    Role.doctor: "医生",
    Role.nurse: "护士",
    Role.manager: "管理者",
    Role.public_health: "公共卫生人员",
    Role.patient: "患者",
    Role.auditor: "审计员",
    Role.admin: "系统管理员",
}


class Permission(StrEnum):
    patient_read = "patient:read"
    patient_search = "patient:search"
    patient_write = "patient:write"
    fhir_import = "fhir:import"
    fhir_export = "fhir:export"
    user_manage = "user:manage"
    audit_read = "audit:read"
    privacy_deid = "privacy:deid"
    knowledge_manage = "knowledge:manage"
    draft_review = "draft:review"  # accept, edit or reject an assistive draft (the feedback loop)
    evaluation_run = "evaluation:run"  # start validation runs and read their reports
    # show a chart's full 身份证号 / phone / address / 医保号 (care relationship; each reveal audited)
    identifier_reveal = "identifier:reveal"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.doctor: frozenset(
        {
            P.patient_read,
            P.patient_search,
            P.patient_write,
            P.fhir_import,
            P.fhir_export,
            P.privacy_deid,
            P.draft_review,
            P.identifier_reveal,
        }
    ),
    Role.nurse: frozenset(
        {P.patient_read, P.patient_search, P.patient_write, P.draft_review, P.identifier_reveal}
    ),
    Role.manager: frozenset({P.patient_search, P.evaluation_run}),
    Role.public_health: frozenset({P.patient_read, P.patient_search, P.fhir_export, P.privacy_deid}),
    Role.patient: frozenset({P.patient_read, P.fhir_export}),
    Role.auditor: frozenset({P.audit_read}),
    Role.admin: frozenset(Permission),
}

# Roles whose access is confined to the single record their account is linked to.
SELF_ONLY_ROLES = frozenset({Role.patient})


def allowed(role: Role | str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


SYSTEM_ROLE = "system"


class Principal:
    """Who is asking: a signed-in user, or the local operator (``role == "system"``) for CLI commands."""

    def __init__(self, username: str, role: str, patient_id: str | None = None) -> None:
        self.username = username
        self.role = role
        self.patient_id = patient_id

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(self.username, self.role)

    def may(self, permission: Permission) -> bool:
        return self.role == SYSTEM_ROLE or allowed(self.role, permission)

    def confined(self) -> bool:
        return self.role in {r.value for r in SELF_ONLY_ROLES}


def system_principal() -> Principal:
    import getpass

    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return Principal(f"cli:{user}", SYSTEM_ROLE)


# who the validation center's runs are stored and audited as
EVALUATOR = Principal("evaluation", SYSTEM_ROLE)


def user_principal(username: str, role: Role | str, patient_id: str | None) -> Principal:
    return Principal(username, Role(role).value, patient_id)
