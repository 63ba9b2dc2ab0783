"""``AppSpec`` — how a scenario app plugs into the platform (ARCHITECTURE.md, "The app frame").

An app folder ``apps/<name>/`` exports ``APP = AppSpec(...)`` from its ``__init__.py``: its router, its
CLI command or group, its evaluation targets, which confirmed drafts become chart documents, its web pages
and navigation links, and the permissions it needs. The surfaces (api, cli, web), the validation center
and the feedback loop read these through :mod:`medfusion.apps.registry`; adding an app edits none of
them. This module is the frame's vocabulary: apps import it (and :mod:`medfusion.apps.deps`), never a
surface.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medfusion.contract import ClinicalOutput
from medfusion.store.access import Permission
from medfusion.store.database import Database
from medfusion.store.events import RecordEvent

__all__ = ["AppSpec", "EvalTarget", "EventSubscriber", "Example", "NavLink", "TargetBuilder", "WriteBack"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_COMMAND = re.compile(r"^[a-z][a-z0-9-]{1,31}$")

# builds the target in this process or a job worker: (database, general model) → an object with
# ``name``, ``kind``, ``tasks`` and ``predict(item) -> Prediction`` (evaluation.targets.Target)
TargetBuilder = Callable[[Database, Any], Any]


class EvalTarget(BaseModel):
    """One evaluation target an app offers to the validation center."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,31}$")
    description: str = Field(min_length=2)
    build: TargetBuilder
    needs_model: bool = False  # refuse to build without a configured general model
    # the item kinds it answers (evaluation.targets.Target.tasks), so the validation center offers only the
    # suites it can run without building it; empty: not declared (offered, and a run says what it skipped)
    tasks: frozenset[str] = frozenset()


class WriteBack(BaseModel):
    """A confirmed (or edited) draft of this app becomes a chart document with this title."""

    model_config = ConfigDict(frozen=True)

    title: str = Field(min_length=2, max_length=60)


class NavLink(BaseModel):
    """A link in the web navigation, shown to roles holding ``permission`` (``None``: to every signed-in
    user, for a page whose route needs no permission beyond signing in, such as ``/ask``)."""

    model_config = ConfigDict(frozen=True)

    title: str = Field(min_length=1, max_length=20)
    path: str = Field(pattern=r"^/[a-z0-9/_-]*$")
    permission: Permission | None


class Example(BaseModel):
    """A worked request for the app's route: shown to users as a sample, and run by the platform's one
    contract test (``subject``: the body field the guardrails read, where a harmful text must be refused)."""

    model_config = ConfigDict(frozen=True)

    title: str = Field(min_length=2, max_length=60)
    path: str = Field(pattern=r"^/api/[a-z0-9/_-]+$")  # POSTed with ``body``
    body: dict[str, Any]
    subject: str  # a key of ``body``


class EventSubscriber(BaseModel):
    """A record-event subscriber the app runs (delivered at least once; make ``handle`` idempotent, e.g.
    with ``store.events.first_delivery``)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    handle: Callable[[RecordEvent], None]


class AppSpec(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    name: str  # the app folder's name; also its stored runs' agent name
    title: str = Field(min_length=2, max_length=60)  # zh-CN, as users see it
    router: APIRouter | None = None
    output: type[ClinicalOutput] | None = None  # what its routes return and its stored runs read back as
    examples: tuple[Example, ...] = ()
    cli: typer.Typer | Callable[..., None] | None = None  # a group (``mdt run``) or one command (``consult``)
    command: str | None = None  # the CLI name; defaults to ``name`` with ``_`` → ``-``
    eval_targets: tuple[EvalTarget, ...] = ()
    write_back: WriteBack | None = None
    pages: APIRouter | None = None  # HTML routes for the web UI
    nav: tuple[NavLink, ...] = ()
    subscribers: tuple[EventSubscriber, ...] = ()  # record events it reacts to (admission, new lab …)
    permissions: tuple[Permission, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("lowercase letters, digits and _ (2–32), starting with a letter")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        if value is not None and not _COMMAND.match(value):
            raise ValueError("lowercase letters, digits and - (2–32), starting with a letter")
        return value

    @model_validator(mode="after")
    def _complete(self) -> AppSpec:
        if self.router is not None and self.output is None:
            raise ValueError("output: an app with a router names its output model (a ClinicalOutput)")
        if self.output is not None and not issubclass(self.output, ClinicalOutput):
            raise ValueError("output: must subclass medfusion.contract.ClinicalOutput")
        for example in self.examples:
            if example.subject not in example.body:
                raise ValueError(f"examples: {example.title!r}: subject {example.subject!r} is not in body")
        return self

    @property
    def cli_name(self) -> str:
        return self.command or self.name.replace("_", "-")
