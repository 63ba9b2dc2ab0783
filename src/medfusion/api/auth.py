"""/api/auth — the OAuth2 password flow (form or JSON) issuing signed, expiring tokens, and ``/me``.
Sign-in and token checks live in :mod:`medfusion.store.tokens`, shared with the web login."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from medfusion.api.deps import CurrentPrincipal, providers
from medfusion.errors import InvalidInput
from medfusion.store.tokens import Credentials, Token, sign_in

router = APIRouter(prefix="/api/auth", tags=["auth 认证"])


async def _read_credentials(request: Request) -> Credentials:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            data: Any = json.loads(await request.body() or b"{}")
        else:
            form = await request.form()
            data = {k: form.get(k) for k in ("username", "password") if form.get(k) is not None}
        return Credentials.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(
            "需要 username 与 password (form or JSON body)",
            details=[{"field": "username/password", "message": type(exc).__name__}],
        ) from None


@router.post("/token", response_model=Token, summary="登录获取令牌 (OAuth2 password flow; form or JSON)")
async def token(request: Request) -> Token:
    credentials = await _read_credentials(request)
    given = providers(request)
    return sign_in(given.db, given.settings, credentials)


class Me(BaseModel):
    username: str
    role: str
    patient_id: str | None


@router.get("/me", response_model=Me, summary="当前用户 who am I")
def me(principal: CurrentPrincipal) -> Me:
    return Me(username=principal.username, role=principal.role, patient_id=principal.patient_id)
