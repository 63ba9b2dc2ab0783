"""Request size limit and the PII-free access log, as plain ASGI middleware."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medfusion.logs import access_log

# Paging offsets and sequence cursors beyond this are refused (422) rather than overflowing SQLite's
# 64-bit INTEGER (schemathesis found `offset=9223372036854775808`).
MAX_OFFSET = 2**53


class _TooLarge(Exception):
    pass


def _reject(limit: int, page: bool = False) -> list[Message]:
    """The error envelope; a browser's form post (it asks for HTML) gets the same message as a small page."""
    message = f"请求体超过 {limit:,} 字节 request body too large"
    if page:
        body = (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>请求过大</title>'
            '<link rel="stylesheet" href="/static/web.css"></head><body><main class="page">'
            '<div class="alert alert-danger" role="alert" data-code="payload_too_large">'
            f"{html.escape(message)}（错误代码 payload_too_large）</div>"
            '<p><a href="/">返回首页</a></p></main></body></html>'
        ).encode()
        kind = b"text/html; charset=utf-8"
    else:
        envelope = {"code": "payload_too_large", "message": message, "details": {"limit_bytes": limit}}
        body = json.dumps({"error": envelope}, ensure_ascii=False).encode()
        kind = b"application/json"
    return [
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        },
        {"type": "http.response.body", "body": body},
    ]


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes — by Content-Length up front, or while streaming without one.
    ``routes`` raises the limit for named paths (the document uploads: ``MEDFUSION_KB_UPLOAD_MAX_BYTES``)."""

    def __init__(self, app: ASGIApp, limit: int, routes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.routes = dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope.get("path", ""), self.limit)
        headers = dict(scope.get("headers") or [])
        page = b"text/html" in headers.get(b"accept", b"")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            for message in _reject(limit, page):
                await send(message)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                for message in _reject(limit, page):
                    await send(message)


class AccessLog:
    """One line per request: method, route template, status, milliseconds. No query, body or ids."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: dict[str, Any] = {"code": 500}
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            access_log.info(
                "%s %s %s %.1fms",
                scope.get("method"),
                template,
                status["code"],
                (time.perf_counter() - started) * 1000,
            )
