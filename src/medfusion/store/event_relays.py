"""Which relay runs the subscribers: the embedded dispatcher over the outbox (the default), or the NATS
JetStream relay when ``MEDFUSION_EVENTS_RELAY`` names a server — the same subscriber code either way."""

from __future__ import annotations

import logging
import threading

from medfusion.errors import InvalidInput
from medfusion.settings import Settings, get_settings
from medfusion.store.database import Database
from medfusion.store.event_dispatch import EventDispatcher, EventRelay, SubscriberRegistry, subscribers


def make_relay(
    db: Database, registry: SubscriberRegistry | None = None, settings: Settings | None = None
) -> EventRelay:
    """The embedded dispatcher, or the NATS JetStream relay when ``MEDFUSION_EVENTS_RELAY`` names one."""
    settings = settings or get_settings()
    registry = registry or subscribers
    if settings.events_relay:
        try:
            from medfusion.store.event_relay_nats import NatsRelay  # nats-py is an optional extra
        except ImportError:
            raise InvalidInput.for_field(
                "MEDFUSION_EVENTS_RELAY", "需要安装 nats-py: pip install 'medfusion[nats]'"
            ) from None
        return NatsRelay(db, settings.events_relay, registry)
    return EventDispatcher(db, registry)


class RelayThread:
    """The embedded default's worker: the relay's ``run_forever`` on a daemon thread of the serving process
    (the API starts one while any subscriber is registered, and stops it on shutdown)."""

    def __init__(self, relay: EventRelay, poll_seconds: float = 0.5) -> None:
        self.relay = relay
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medfusion-events", daemon=True)

    def _run(self) -> None:
        try:
            self.relay.run_forever(self._stop, self.poll_seconds)
        except Exception:  # a relay that cannot run is reported, never takes the server down
            logging.getLogger(__name__).exception("record-event relay stopped")

    def start(self) -> RelayThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
