"""Roles and what each may do — the permission table, kept as data.

Minimum necessary (GB/T 39725-2020 §6, access control for health data): clinicians read and write charts;
managers see lists for operations, not charts; auditors see the audit log, not patient data; a patient
sees only the record their account is linked to; a pharmacist reads charts for their medication lists
without writing them (《医疗机构处方审核规范》, 国卫办医发〔2018〕14号: the review checks a prescription
against the patient's diagnoses and other medications, so the reviewer reads them). What each role sees
*of* a patient (identifiers masked, de-identified) is the display policy, ``store/display_policy.toml``;
``identifier:reveal`` is the right to see the full identifiers on a chart, each time as an audited
``patient.reveal``. A temporary password (set by an administrator) allows nothing until it is changed.
"""

from __future__ import annotations

from enum import StrEnum

from medfusion.store import audit


class Role(StrEnum):
    doctor = "doctor"
    nurse = "nurse"
    pharmacist = "pharmacist"
    manager = "manager"
    public_health = "public_health"
    patient = "patient"
    auditor = "auditor"
    admin = "admin"


ROLE_LABELS = {
    Role.doctor: "医生",
    Role.nurse: "护士",
    Role.pharmacist: "药师",
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
    prescription_review = "prescription:review"  # review prescriptions and medication orders (药师审方)
    drug_knowledge = "drug:knowledge"  # consult the drug knowledge (说明书, interactions, dosing)


# What each permission lets a user do, for the roles page (zh-CN first).
PERMISSION_LABELS: dict[Permission, str] = {
    Permission.patient_read: "查阅病历 read charts",
    Permission.patient_search: "检索患者 search patients",
    Permission.patient_write: "修改病历 write charts",
    Permission.fhir_import: "导入 FHIR import",
    Permission.fhir_export: "导出 FHIR export",
    Permission.user_manage: "管理用户 manage users",
    Permission.audit_read: "查阅审计日志 read the audit log",
    Permission.privacy_deid: "去标识化 de-identify",
    Permission.knowledge_manage: "管理知识库 manage the knowledge base",
    Permission.draft_review: "审核 AI 草稿 accept / edit / reject drafts",
    Permission.evaluation_run: "运行验证中心评测 run validations",
    Permission.identifier_reveal: "查看完整身份标识（记入审计） reveal identifiers (audited)",
    Permission.prescription_review: "处方审核 review prescriptions",
    Permission.drug_knowledge: "药品知识 drug knowledge",
}

# One sentence per role for the roles page: who it is for and what it is kept from.
ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.doctor: "临床诊疗：查阅和书写病历，审核 AI 草稿",
    Role.nurse: "护理：查阅和记录病历，审核 AI 草稿",
    Role.pharmacist: "药学服务：查阅病历中的用药清单，处方审核与药品知识；身份标识按护士的方式隐去",
    Role.manager: "运营管理：患者列表与验证中心，不看病历",
    Role.public_health: "公共卫生：去标识化的患者数据",
    Role.patient: "患者本人：只看自己的病历",
    Role.auditor: "审计：只看审计日志，不看患者数据",
    Role.admin: "系统管理：用户、角色与设置，拥有全部权限",
}


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
    Role.pharmacist: frozenset({P.patient_read, P.patient_search, P.prescription_review, P.drug_knowledge}),
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
    """Who is asking: a signed-in user, or the local operator (``role == "system"``) for CLI commands.

    ``must_change_password``: the account signed in with a temporary password an administrator set; until
    it chooses its own, it may do nothing but that (every permission check refuses)."""

    def __init__(
        self,
        username: str,
        role: str,
        patient_id: str | None = None,
        *,
        must_change_password: bool = False,
    ) -> None:
        self.username = username
        self.role = role
        self.patient_id = patient_id
        self.must_change_password = must_change_password

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(self.username, self.role)

    def may(self, permission: Permission) -> bool:
        if self.must_change_password:
            return False
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


def user_principal(
    username: str, role: Role | str, patient_id: str | None, *, must_change_password: bool = False
) -> Principal:
    return Principal(username, Role(role).value, patient_id, must_change_password=must_change_password)
