"""The installed apps: every package under ``medfusion/apps/`` that exports ``APP``, plus any registered
at run time (a plugin, a test). The surfaces, the validation center and the feedback loop loop over
:func:`apps`; nothing below imports an app by name.

A malformed ``APP`` stops start-up with a message naming the app and the field
(:class:`~medfusion.errors.InvalidAppSpec`)."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Any

from pydantic import ValidationError

import medfusion.apps
from medfusion.apps.spec import AppSpec, EvalTarget
from medfusion.contract import ClinicalOutput, DraftOutput
from medfusion.errors import InvalidAppSpec
from medfusion.store.event_dispatch import SubscriberRegistry, subscribers

_lock = threading.Lock()
_installed: dict[str, AppSpec] | None = None
_registered: dict[str, AppSpec] = {}


def validate(name: str, candidate: Any) -> AppSpec:
    """``candidate`` as an :class:`AppSpec` for the app ``name``, or the error naming app and field."""
    if candidate is None:
        raise InvalidAppSpec(f"app {name}: APP: missing (export APP = AppSpec(...) from its __init__.py)")
    try:
        spec = candidate if isinstance(candidate, AppSpec) else AppSpec.model_validate(candidate)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "APP"
        raise InvalidAppSpec(
            f"app {name}: APP.{field}: {first['msg']}",
            details=[{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()],
        ) from None
    if spec.name != name:
        raise InvalidAppSpec(f"app {name}: APP.name: is {spec.name!r}, must be the folder's name {name!r}")
    return spec


def _discover() -> dict[str, AppSpec]:
    found: dict[str, AppSpec] = {}
    for module in sorted(pkgutil.iter_modules(medfusion.apps.__path__), key=lambda m: m.name):
        if not module.ispkg:
            continue  # the frame's own modules (spec, registry, deps)
        package = importlib.import_module(f"{medfusion.apps.__name__}.{module.name}")
        found[module.name] = validate(module.name, getattr(package, "APP", None))
    return found


def _check_unique(specs: list[AppSpec]) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        keys = [f"command {spec.cli_name}"] + [f"target {t.name}" for t in spec.eval_targets]
        keys += [f"subscriber {s.name}" for s in spec.subscribers]
        for key in keys:
            if key in seen:
                raise InvalidAppSpec(f"app {spec.name}: {key} is already taken by app {seen[key]}")
            seen[key] = spec.name


def apps() -> tuple[AppSpec, ...]:
    """Installed apps (found once per process) and run-time registrations, by name."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = _discover()
        merged = {**_installed, **_registered}
    specs = [merged[name] for name in sorted(merged)]
    _check_unique(specs)
    return tuple(specs)


def get(name: str) -> AppSpec | None:
    return next((spec for spec in apps() if spec.name == name), None)


def register(spec: AppSpec) -> None:
    """Add an app at run time (plugins, tests); surfaces built afterwards include it."""
    validate(spec.name, spec)
    with _lock:
        _registered[spec.name] = spec


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def eval_targets() -> dict[str, tuple[AppSpec, EvalTarget]]:
    """Every app's evaluation targets by target name."""
    return {target.name: (spec, target) for spec in apps() for target in spec.eval_targets}


def read_output(agent: str, result: dict[str, Any]) -> ClinicalOutput:
    """A stored run's result as its app's typed output (any draft as a :class:`DraftOutput` when its app is
    no longer installed)."""
    spec = get(agent)
    model: type[ClinicalOutput] = spec.output if spec and spec.output else DraftOutput
    return model.model_validate(result)


def install_subscribers(target: SubscriberRegistry | None = None) -> list[str]:
    """Register every app's record-event subscribers with the dispatcher's registry (idempotent); the
    names installed."""
    into = target or subscribers
    names = []
    for spec in apps():
        for subscriber in spec.subscribers:
            into.register(subscriber.name, subscriber.handle)
            names.append(subscriber.name)
    return names
