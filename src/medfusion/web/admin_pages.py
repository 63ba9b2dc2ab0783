"""系统管理 — the administration pages (``user:manage``): users (add, disable / enable, reset a password,
unlock, change a role, force a sign-out), the roles and what each may do, and a read-only view of the
settings (which general model, which backends — never a key or a password). Plus ``/account/password``,
where any signed-in user chooses a new password (the one thing a temporary password allows).

Every change goes through :class:`medfusion.store.account_admin.AccountAdmin`, the same as the API and
the CLI, so it is audited the same way. Forms post to these routes and redirect (303) to a page that says
what happened (``?done=…``), so reloading never repeats an action; each add-user form carries a one-time
key, and a second submit of the same form (a double click) gets the first one's confirmation instead of a
"username exists" error. A form posted after the session ended sends the user to sign in and back to the
page, where the small script in ``admin.html`` restores what was typed (sessionStorage; never passwords)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medfusion.apps.deps import database, settings
from medfusion.apps.page_frame import COOKIE, SubmittedForms, error_page, render, safe_next, signed_in
from medfusion.errors import InvalidInput, MedFusionError, PermissionDenied
from medfusion.settings import Settings
from medfusion.store import audit
from medfusion.store.access import (
    PERMISSION_LABELS,
    ROLE_DESCRIPTIONS,
    ROLE_LABELS,
    ROLE_PERMISSIONS,
    SELF_ONLY_ROLES,
    Permission,
    Principal,
    Role,
)
from medfusion.store.account_admin import AccountAdmin, change_own_password
from medfusion.store.display import policy
from medfusion.store.tokens import Token, require

router = APIRouter(include_in_schema=False)

Op = Literal["disable", "enable", "unlock", "sign_out", "reset_password", "role"]
DONE = {
    "create": "已新建账号 {user}",
    "disable": "已停用 {user}，其会话已全部失效",
    "enable": "已启用 {user}（此前的会话仍然无效，须重新登录）",
    "unlock": "已解除 {user} 的登录锁定，现在即可登录",
    "sign_out": "已强制 {user} 下线：其全部令牌已失效",
    "reset_password": "已为 {user} 设置临时密码；其会话已全部失效，下次登录须先修改密码",
    "role": "已将 {user} 的角色改为 {role}，下一次请求起生效",
}


submitted = SubmittedForms()


def _login_then(page: str) -> RedirectResponse:
    """A post without a session: sign in, then back to the page (GET) the form was on."""
    return RedirectResponse(f"/login?next={quote(page)}", status_code=303)


def _admin(request: Request, principal: Principal) -> AccountAdmin:
    return AccountAdmin(database(request), settings(request), principal)


def _role_choices() -> list[tuple[str, str]]:
    return [(r.value, f"{ROLE_LABELS[r]} {r.value}") for r in Role]


def _users_page(
    request: Request,
    principal: Principal,
    *,
    status: int = 200,
    notice: str | None = None,
    error: MedFusionError | None = None,
    typed: dict[str, str] | None = None,
    failed_user: str | None = None,
) -> Response:
    try:
        accounts = _admin(request, principal).accounts()
    except MedFusionError as refused:
        return error_page(request, principal, refused)
    return render(
        request,
        "admin.html",
        principal,
        status=status,
        section="users",
        accounts=accounts,
        roles=_role_choices(),
        role_labels={r.value: ROLE_LABELS[r] for r in Role},
        notice=notice,
        error=error,
        typed=typed or {},
        failed_user=failed_user,
        form_key=secrets.token_urlsafe(16),
        admins_active=sum(a.role is Role.admin and a.active for a in accounts),
    )


@router.get("/admin", response_class=HTMLResponse)
def users_page(
    request: Request,
    done: Annotated[str | None, Query(max_length=20)] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    role: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _login_then("/admin")
    label = ROLE_LABELS[Role(role)] if role is not None and role in Role.__members__ else role
    notice = DONE[done].format(user=user or "", role=label or "") if done in DONE else None
    return _users_page(request, principal, notice=notice)


@router.post("/admin/users")
def add_user(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    role: Annotated[str, Form(max_length=20)],
    form_key: Annotated[str, Form(min_length=8, max_length=64)],
    patient_id: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _login_then("/admin")
    earlier = submitted.get(form_key)
    if earlier is not None:
        return RedirectResponse(earlier, status_code=303)
    typed = {"username": username, "role": role, "patient_id": patient_id or ""}
    try:
        _admin(request, principal).add(username.strip(), password, role, (patient_id or "").strip() or None)
    except MedFusionError as error:
        return _users_page(request, principal, status=error.status_code, error=error, typed=typed)
    location = "/admin?" + urlencode({"done": "create", "user": username.strip()})
    submitted.put(form_key, location)
    return RedirectResponse(location, status_code=303)


@router.post("/admin/users/{username}")
def change_user(
    request: Request,
    username: Annotated[str, Path(min_length=3, max_length=64)],
    op: Annotated[Op, Form()],
    temporary_password: Annotated[str | None, Form(max_length=256)] = None,
    role: Annotated[str | None, Form(max_length=20)] = None,
    patient_id: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """One change to one account; the confirmation names it."""
    principal = signed_in(request)
    if principal is None:
        return _login_then("/admin")
    admin = _admin(request, principal)
    try:
        if op == "disable":
            admin.disable(username)
        elif op == "enable":
            admin.enable(username)
        elif op == "unlock":
            admin.unlock(username)
        elif op == "sign_out":
            admin.sign_out(username)
        elif op == "reset_password":
            admin.reset_password(username, temporary_password or "")
        else:
            admin.change_role(username, role or "", (patient_id or "").strip() or None)
    except MedFusionError as error:
        return _users_page(request, principal, status=error.status_code, error=error, failed_user=username)
    query = {"done": op, "user": username} | ({"role": role} if op == "role" and role else {})
    return RedirectResponse("/admin?" + urlencode(query), status_code=303)


def _read_allowed(request: Request, principal: Principal, action: str) -> MedFusionError | None:
    try:
        require(
            database(request),
            principal,
            Permission.user_manage,
            action,
            "需要用户管理权限 user:manage required",
        )
    except PermissionDenied as error:
        return error
    return None


@router.get("/admin/roles", response_class=HTMLResponse)
def roles_page(request: Request) -> Response:
    """Each role, who it is for, what it may do, and how it sees a patient's identifiers."""
    principal = signed_in(request)
    if principal is None:
        return _login_then("/admin/roles")
    refused = _read_allowed(request, principal, "roles.read")
    if refused is not None:
        return error_page(request, principal, refused)
    display = policy()
    roles = [
        {
            "value": role.value,
            "label": ROLE_LABELS[role],
            "description": ROLE_DESCRIPTIONS[role],
            "permissions": [PERMISSION_LABELS[p] for p in Permission if p in ROLE_PERMISSIONS[role]],
            "holds": {p.value for p in ROLE_PERMISSIONS[role]},
            "self_only": role in SELF_ONLY_ROLES,
            "views": display.roles.get(role.value),
        }
        for role in Role
    ]
    permissions = [(p.value, PERMISSION_LABELS[p]) for p in Permission]
    return render(
        request,
        "admin_roles.html",
        principal,
        section="roles",
        roles=roles,
        permissions=permissions,
        policy_version=display.version,
        policy_status=display.status,
    )


def _host(url: str | None) -> str | None:
    """The host (and port) of a URL, without credentials, path or query."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.hostname is None:
        return None
    return parts.hostname + (f":{parts.port}" if parts.port else "")


def settings_view(given: Settings) -> list[tuple[str, list[tuple[str, str]]]]:
    """What is configured, as (group, [(item, value)]) — endpoints as host names, keys as whether set."""
    url = given.resolved_database_url
    kind = url.split(":", 1)[0].split("+", 1)[0]
    database_text = (
        f"PostgreSQL（{_host(url) or '本机'}）"
        if kind == "postgresql"
        else f"SQLite（{given.resolved_data_dir}）"
    )
    if given.llm_base_url and given.llm_model:
        model = f"{given.llm_model} @ {_host(given.llm_base_url) or given.llm_base_url}"
        model += (
            "（院外端点：发送前去标识化 external: de-identified）" if given.llm_external else "（院内端点）"
        )
    else:
        model = "未配置 — 各应用走专科（确定性）路径 none: every app runs its specialist path"
    named = ", ".join(f"{name}={m.model}" for name, m in sorted(given.llm_models.items())) or "无 none"
    key = "已设置（不显示）set, not shown" if given.llm_api_key else "未设置 not set"
    dense = (
        f"Milvus（{_host(given.kb_milvus_uri) or given.kb_milvus_uri or 'milvus-lite 本地文件'}）"
        if given.kb_dense_backend == "milvus"
        else "进程内向量矩阵 in-process"
    )
    sparse = "PostgreSQL 全文检索 full-text" if given.kb_backend == "postgres" else "进程内 BM25 in-process"
    relay = (
        f"NATS JetStream（{_host(given.events_relay)}）"
        if given.events_relay
        else "进程内分发（SQLite/PostgreSQL 发件箱）in-process over the outbox"
    )
    ray = (
        f"Ray 集群 {_host(given.ray_address) or given.ray_address}"
        if given.ray_address
        else "按需启动本机 Ray local"
    )
    upload = getattr(given, "kb_upload_max_bytes", given.max_request_bytes)
    return [
        (
            "通用大模型 general model",
            [("模型与端点 model @ host", model), ("其他命名模型 named models", named), ("密钥 API key", key)],
        ),
        (
            "后端 backends",
            [
                ("数据库 database", database_text),
                ("稀疏检索 sparse retrieval", sparse),
                ("向量检索 dense retrieval", dense),
                ("批处理作业 job executor", f"本机进程池（默认）local process pool; --executor ray: {ray}"),
                ("记录事件 event relay", relay),
            ],
        ),
        (
            "显示与限制 display and limits",
            [
                ("显示时区 display timezone", f"{given.timezone}（存储为 UTC stored in UTC）"),
                ("知识库上传上限 upload limit", _size(upload)),
                ("其他请求体上限 request body limit", _size(given.max_request_bytes)),
                ("登录令牌有效期 token lifetime", f"{given.token_ttl_minutes} 分钟 minutes"),
                (
                    "登录锁定 lockout",
                    f"连续失败 {given.login_max_failures} 次锁定 {given.login_lockout_minutes} 分钟",
                ),
            ],
        ),
    ]


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):g} MB" if count >= 1024 * 1024 else f"{count / 1024:g} KB"


@router.get("/admin/settings", response_class=HTMLResponse)
def settings_page(request: Request) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _login_then("/admin/settings")
    refused = _read_allowed(request, principal, "settings.read")
    if refused is not None:
        return error_page(request, principal, refused)
    audit.append(database(request), principal.actor, "settings.read", detail={"surface": "web"})
    return render(
        request, "admin_settings.html", principal, section="settings", groups=settings_view(settings(request))
    )


def _set_session(response: Response, request: Request, token: Token) -> None:
    # the same cookie the sign-in sets (web/pages.py:login)
    response.set_cookie(
        COOKIE,
        token.access_token,
        max_age=token.expires_in,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.get("/account/password", response_class=HTMLResponse)
def password_page(
    request: Request,
    done: Annotated[bool, Query()] = False,
    next: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _login_then("/account/password")
    return render(request, "admin_password.html", principal, done=done, next=safe_next(next), error=None)


@router.post("/account/password")
def change_password(
    request: Request,
    current_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
    confirm_password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=400)] = "/",
) -> Response:
    principal = signed_in(request)
    if principal is None:
        return _login_then("/account/password")
    context: dict[str, Any] = {"done": False, "next": safe_next(next)}
    if new_password != confirm_password:
        mismatch = InvalidInput.for_field(
            "confirm_password", "两次输入的新密码不一致 the new passwords differ", code="password_mismatch"
        )
        return render(request, "admin_password.html", principal, status=422, error=mismatch, **context)
    try:
        token = change_own_password(
            database(request), settings(request), principal, current_password, new_password
        )
    except MedFusionError as error:
        return render(
            request, "admin_password.html", principal, status=error.status_code, error=error, **context
        )
    response = RedirectResponse(
        "/account/password?" + urlencode({"done": "true", "next": safe_next(next)}), status_code=303
    )
    _set_session(response, request, token)
    return response
