"""Asks in flight from the web page (``/ask``): the double-submit guard and the progressive path.

Each rendering of the form carries a fresh key (``ask_key``). The first POST with a key and a request
claims a :class:`Ticket` and runs the ask; a repeat of the same submission (a double click, a reload of the
POST, a browser retry) finds that ticket and gets its answer, so one submission is one stored run, never
two. A submission whose text changed under the same key (edited, then sent again before the page came
back) is a different question and gets its own ticket.

With a general model configured and the page's script running, the ask goes on in a background thread
(like the validation center's runs) and the page polls ``GET /ask/runs/{key}``; otherwise the POST itself
runs it, and a repeat waits for the first.

Tickets live in this process's memory, bounded in number and age (``TTL_SECONDS`` after an ask finished),
and one user has at most ``MAX_IN_FLIGHT`` asks running at once (each may hold a thread and a model call;
more is refused with :class:`TooManyAsks`, a repeat of one in flight still joins it). Behind several
workers a repeat that reaches another worker is not recognised, and an answer polled from another worker is
found only once it is stored (by its run id). The stored run, not the ticket, is the record."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from medfusion.apps.ask.models import AskRequest, AskResult
from medfusion.errors import MedFusionError

__all__ = ["KEY_PATTERN", "MAX_IN_FLIGHT", "TTL_SECONDS", "Ticket", "Tickets", "TooManyAsks", "tickets"]

KEY_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
TTL_SECONDS = 15 * 60
LIMIT = 512
MAX_IN_FLIGHT = 4  # asks one user may have running at once (several tabs), each a thread and a model call
_log = logging.getLogger(__name__)


class TooManyAsks(MedFusionError):
    code = "too_many_asks"
    status_code = 429


def fingerprint(request: AskRequest) -> str:
    """What makes two submissions the same one: every field of the request."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


@dataclass
class Ticket:
    key: str
    username: str
    request: AskRequest
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: AskResult | None = None
    error: MedFusionError | None = None
    crashed: bool = False  # an unexpected failure (logged); the page says so instead of waiting forever
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def run(self, work: Callable[[AskRequest], AskResult]) -> None:
        """Do the ask once and record how it ended; waiters are released whatever happens."""
        try:
            self.result = work(self.request)
        except MedFusionError as error:
            self.error = error
        except Exception:
            self.crashed = True
            _log.exception("ask ticket failed")
            raise
        finally:
            self.finished = time.monotonic()
            self.done.set()


class Tickets:
    def __init__(self, ttl: float = TTL_SECONDS, limit: int = LIMIT, in_flight: int = MAX_IN_FLIGHT) -> None:
        self.ttl = ttl
        self.limit = limit
        self.in_flight = in_flight
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], dict[str, Ticket]] = {}

    def claim(self, username: str, key: str, request: AskRequest) -> tuple[Ticket, bool]:
        """The ticket for this submission, and whether this call created it (and so must run it); a new ask
        beyond the user's ``in_flight`` running ones is refused (:class:`TooManyAsks`)."""
        digest = fingerprint(request)
        with self._lock:
            self._expire()
            found = self._items.get((username, key), {}).get(digest)
            if found is not None:
                return found, False
            running = sum(
                not t.done.is_set()
                for (owner, _), by_request in self._items.items()
                if owner == username
                for t in by_request.values()
            )
            if running >= self.in_flight:
                raise TooManyAsks(
                    f"已有 {running} 个问题正在回答，请等其完成后再提问 "
                    f"{running} asks of yours are still running; wait for one to finish",
                    details={"in_flight": running, "limit": self.in_flight},
                )
            ticket = Ticket(key=key, username=username, request=request)
            self._items.setdefault((username, key), {})[digest] = ticket
            return ticket, True

    def get(self, username: str, key: str) -> Ticket | None:
        """The latest submission under ``key`` by ``username`` (what the page polls)."""
        with self._lock:
            found = self._items.get((username, key))
            return max(found.values(), key=lambda t: t.started) if found else None

    def start(self, ticket: Ticket, work: Callable[[AskRequest], AskResult]) -> None:
        """Run ``ticket`` in a background thread."""
        threading.Thread(target=_quiet, args=(ticket, work), name=f"ask-{ticket.key}", daemon=True).start()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def _expire(self) -> None:
        now = time.monotonic()
        for slot, by_request in list(self._items.items()):
            for digest, ticket in list(by_request.items()):
                if ticket.done.is_set() and now - (ticket.finished or ticket.started) > self.ttl:
                    del by_request[digest]
            if not by_request:
                del self._items[slot]
        while sum(len(v) for v in self._items.values()) >= self.limit:
            finished = [
                (t.started, slot, p)
                for slot, v in self._items.items()
                for p, t in v.items()
                if t.done.is_set()
            ]
            if not finished:
                break  # only asks still running: keep them all (each is bounded by the model's timeout)
            _, slot, digest = min(finished)
            del self._items[slot][digest]
            if not self._items[slot]:
                del self._items[slot]


def _quiet(ticket: Ticket, work: Callable[[AskRequest], AskResult]) -> None:
    # a failure is already logged and recorded on the ticket; a thread has no caller to raise to
    with contextlib.suppress(Exception):
        ticket.run(work)


tickets = Tickets()
