"""The page frame: how the platform's own pages and every app's pages render inside one chrome.

The session is the API's own token in an HttpOnly, SameSite=Strict cookie (``COOKIE``), so the browser
never sees it in script and other sites cannot ride on it. A page handler asks :func:`signed_in` for the
principal (``None`` → :func:`to_login`), renders with :func:`render` (the design system's ``base.html``:
navigation for the principal's role, the installed apps' links) and shows a typed error with
:func:`error_page`.

Templates are looked up in ``web/templates`` first, then relative to ``medfusion/apps`` — an app keeps its
own templates in ``apps/<name>/templates/`` and names them ``"<name>/templates/<file>.html"``; they extend
``base.html``. Apps import this module (it is part of the frame, like :mod:`medfusion.apps.deps`), never
the web surface.

Jinja filters every template may use: ``local`` (a UTC time shown in the configured display zone, with
the zone), ``markdown`` (a draft rendered as a document: CommonMark with raw HTML disabled, so a draft
cannot inject markup)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from medfusion.apps import registry
from medfusion.apps.deps import database, settings
from medfusion.apps.spec import NavLink
from medfusion.errors import AuthenticationFailed, MedFusionError
from medfusion.record.clinical_time import display_zone, format_local
from medfusion.store.access import ROLE_LABELS, Principal, Role
from medfusion.store.tokens import principal_from_token

__all__ = [
    "COOKIE",
    "SubmittedForms",
    "app_links",
    "error_page",
    "render",
    "safe_next",
    "signed_in",
    "templates",
    "to_login",
]

COOKIE = "mf_session"
_WEB_TEMPLATES = Path(__file__).parents[1] / "web" / "templates"
_APPS = Path(__file__).parent

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``value`` (stored in UTC) in the display zone, with the zone's abbreviation (e.g. CST) — the same
    formatting as the CLI's (:func:`medfusion.record.clinical_time.format_local`)."""
    return format_local(value, fmt)


def zone_label() -> str:
    """The display zone as the chrome names it: abbreviation now and key (e.g. ``CST Asia/Shanghai``)."""
    zone = display_zone()
    return f"{datetime.now(zone).tzname() or zone.key} {zone.key}"


def render_markdown(text: str | None) -> Markup:
    """A draft's Markdown as HTML; raw HTML in the source is shown as text, never interpreted."""
    return Markup(_markdown.render(text or ""))


_environment = Environment(
    loader=FileSystemLoader([str(_WEB_TEMPLATES), str(_APPS)]),
    autoescape=select_autoescape(["html", "xml"]),
    auto_reload=False,
)
_environment.filters["local"] = local_time
_environment.filters["markdown"] = render_markdown
_environment.globals["zone_label"] = zone_label
templates = Jinja2Templates(env=_environment)


# the pages a session holding a temporary password may open: home (which sends it on) and choosing a new one
PASSWORD_CHANGE_PAGES = frozenset({"/", "/account/password"})


def signed_in(request: Request) -> Principal | None:
    """Who holds this browser session, or ``None`` (no cookie, expired or disabled account — or an account
    still holding an administrator's temporary password, on any page but choosing its own)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        who = principal_from_token(database(request), settings(request), raw)
    except AuthenticationFailed:
        return None
    if who.must_change_password and request.url.path not in PASSWORD_CHANGE_PAGES:
        return None
    return who


def safe_next(target: str | None) -> str:
    """A same-site path to return to after sign-in (never another origin)."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def app_links(principal: Principal | None) -> list[NavLink]:
    """The installed apps' navigation links this principal may follow (``AppSpec.nav``)."""
    if principal is None:
        return []
    return [
        link
        for spec in registry.apps()
        for link in spec.nav
        if link.permission is None or principal.may(link.permission)
    ]


def render(
    request: Request, name: str, principal: Principal | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """``name`` inside the platform chrome for ``principal`` (``None``: signed out, e.g. the login page)."""
    role = Role(principal.role) if principal and principal.role in Role.__members__ else None
    return templates.TemplateResponse(
        request,
        name,
        {
            "me": principal,
            "role_label": ROLE_LABELS.get(role, "") if role else "",
            "app_links": app_links(principal),
            "current_path": request.url.path,
            **context,
        },
        status_code=status,
    )


def error_page(request: Request, principal: Principal | None, error: MedFusionError) -> HTMLResponse:
    """A typed error as a page with its status code, code and message."""
    return render(request, "error.html", principal, status=error.status_code, error=error)


class SubmittedForms:
    """One-time form keys this process has handled → where their submit redirected (bounded, oldest out).
    A form that creates something carries a fresh key; a double click posts the same key twice and the
    second gets the first's redirect instead of a second record (add user, start an evaluation)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, location: str) -> None:
        with self._lock:
            self._items[key] = location
            while len(self._items) > self._size:
                self._items.popitem(last=False)
