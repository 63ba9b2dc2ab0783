"""Record events through NATS JetStream: the scale-out relay (``MEDFUSION_EVENTS_RELAY=nats://…``).

The publisher moves the outbox, in sequence order, onto one JetStream stream (subject
``medfusion.events.<type>``); each message carries the event as JSON and ``Nats-Msg-Id`` = the event id, so a
publisher that crashes between publishing and moving its checkpoint republishes into the stream's duplicate
window and JetStream drops the copies. Each subscriber is a durable pull consumer named after it — its
checkpoint is the consumer's ack floor, kept by JetStream — and any number of workers may share it. A message
is acked only after the handler has returned (at least once); a handler that raises is recorded in
``event_failures`` (so ``events tail --failed`` reports it) and the message is nak'ed with the same
exponential backoff as the embedded dispatcher, while the consumer goes on with later messages. The
handlers are the same callables the embedded dispatcher calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from medfusion.errors import EventRelayUnavailable
from medfusion.store import events
from medfusion.store.database import Database
from medfusion.store.event_dispatch import (
    Backoff,
    DispatchReport,
    Handler,
    SubscriberRegistry,
    checkpoint,
    record_failure,
    resolve_failure,
    set_checkpoint,
    subscribers,
)
from medfusion.store.events import RecordEvent

T = TypeVar("T")


@dataclass
class NatsRelay:
    db: Database
    url: str
    registry: SubscriberRegistry = field(default_factory=lambda: subscribers)
    stream: str = "MEDFUSION_EVENTS"
    subject: str = "medfusion.events"
    ack_wait_seconds: float = 30.0
    batch: int = 200
    fetch_timeout_seconds: float = 0.5
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def publisher_checkpoint(self) -> str:
        """The publisher's row in ``event_checkpoints`` (``:`` keeps it apart from subscriber names)."""
        return f"relay:nats:{self.stream}"[:100]

    # --- the sync surface (same as the embedded dispatcher) --------------------------------
    def run_once(self) -> DispatchReport:
        """Publish what is pending, then drain every subscriber's consumer once."""
        return asyncio.run(self._once())

    def run_forever(
        self,
        stop: threading.Event | None = None,
        poll_seconds: float = 0.5,
        *,
        publish: bool = True,
        names: list[str] | None = None,
    ) -> None:
        """Publisher and one consumer loop per subscriber, side by side until ``stop`` is set. A worker
        deployment runs ``publish=False`` with the subscriber ``names`` it serves."""
        for name in names or []:
            self.registry.get(name)  # an unknown name is a typed error, not a worker that idles
        asyncio.run(self._forever(stop or threading.Event(), poll_seconds, publish, names))

    def publish_pending(self) -> int:
        return asyncio.run(self._with_connection(self._publish_pending))

    # --- internals --------------------------------------------------------------------------
    async def _connect(self) -> tuple[Client, JetStreamContext]:
        try:
            nc = await nats.connect(
                self.url, connect_timeout=2, max_reconnect_attempts=2, allow_reconnect=True
            )
        except (nats.errors.NoServersError, OSError, TimeoutError) as exc:
            raise EventRelayUnavailable(
                f"事件中继不可用 NATS relay unreachable: {type(exc).__name__}"
            ) from None
        js = nc.jetstream()
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.subject}.>"],
                    storage=StorageType.FILE,
                    duplicate_window=120.0,
                )
            )
        return nc, js

    async def _with_connection(self, work: Callable[[JetStreamContext], Awaitable[T]]) -> T:
        nc, js = await self._connect()
        try:
            return await work(js)
        finally:
            await nc.drain()

    async def _once(self) -> DispatchReport:
        async def work(js: JetStreamContext) -> DispatchReport:
            await self._publish_pending(js)
            report = DispatchReport()
            for name, handler in self.registry:
                sub = await self._subscription(js, name)
                report.add(await self._drain(sub, name, handler))
                await sub.unsubscribe()
            return report

        return await self._with_connection(work)

    async def _forever(
        self, stop: threading.Event, poll_seconds: float, publish: bool, names: list[str] | None
    ) -> None:
        nc, js = await self._connect()
        chosen = [(n, h) for n, h in self.registry if names is None or n in names]

        async def publisher() -> None:
            while not stop.is_set():
                if await self._publish_pending(js) == 0:
                    await asyncio.sleep(poll_seconds)

        async def consumer(name: str, handler: Handler) -> None:
            sub = await self._subscription(js, name)
            while not stop.is_set():
                await self._drain(sub, name, handler, once=True)

        try:
            tasks = [consumer(n, h) for n, h in chosen]
            await asyncio.gather(*([publisher()] if publish else []), *tasks)
        finally:
            await nc.drain()

    async def _publish_pending(self, js: JetStreamContext) -> int:
        published = 0
        while True:
            with self.db.read_session() as session:
                batch = events.after(
                    session, checkpoint(session, self.publisher_checkpoint), limit=self.batch
                )
            if not batch:
                return published
            await asyncio.gather(
                *(
                    js.publish(
                        f"{self.subject}.{event.type}",
                        event.model_dump_json().encode(),
                        headers={"Nats-Msg-Id": event.id},
                    )
                    for event in batch
                )
            )
            with self.db.session() as session:
                set_checkpoint(session, self.publisher_checkpoint, batch[-1].seq, self.clock())
            published += len(batch)

    async def _subscription(self, js: JetStreamContext, name: str) -> JetStreamContext.PullSubscription:
        self.registry.get(name)  # an unknown name is a typed error before any consumer is made
        return await js.pull_subscribe(
            f"{self.subject}.>",
            durable=name,
            stream=self.stream,
            config=ConsumerConfig(
                durable_name=name,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait_seconds,
                max_deliver=-1,
            ),
        )

    async def _drain(
        self, sub: JetStreamContext.PullSubscription, name: str, handler: Handler, *, once: bool = False
    ) -> DispatchReport:
        """Fetch and handle until the consumer has nothing new (``once``: one fetch). A message that keeps
        failing comes back after its backoff; a fetch of nothing but messages already tried in this call
        ends it, so a permanently failing event cannot keep ``run_once`` going."""
        report = DispatchReport()
        tried: set[int] = set()
        while True:
            try:
                messages = await sub.fetch(self.batch, timeout=self.fetch_timeout_seconds)
            except TimeoutError:  # nothing more (nats-py raises either its own or asyncio's)
                return report
            fresh = False
            for message in messages:
                stream_seq = message.metadata.sequence.stream
                fresh = fresh or stream_seq not in tried
                tried.add(stream_seq)
                report.add(await self._handle(name, handler, message))
            if once or not fresh:
                return report

    async def _handle(self, name: str, handler: Handler, message: Msg) -> DispatchReport:
        event = RecordEvent.model_validate_json(message.data)
        attempts = message.metadata.num_delivered or 1
        try:
            await asyncio.to_thread(handler, event)
        except Exception as error:
            await asyncio.to_thread(self._park, name, event, error, attempts)
            await message.nak(delay=self.backoff.delay(attempts))
            return DispatchReport(failed=1, retried=int(attempts > 1))
        recovered = False
        if attempts > 1:  # a redelivery: after a failure (resolve it) or after a worker died
            recovered = await asyncio.to_thread(self._resolve, name, event)
        await message.ack()  # a lost ack only means a redelivery: the handler has already returned
        return DispatchReport(delivered=1, retried=int(attempts > 1), recovered=int(recovered))

    def _park(self, name: str, event: RecordEvent, error: BaseException, attempts: int) -> None:
        with self.db.session() as session:
            record_failure(session, name, event, error, self.backoff, self.clock(), attempts=attempts)

    def _resolve(self, name: str, event: RecordEvent) -> bool:
        with self.db.session() as session:
            return resolve_failure(session, name, event.seq, self.clock())


def consumer_state(relay: NatsRelay, name: str) -> dict[str, Any]:
    """Pending and unacknowledged counts for one subscriber's durable consumer (for tests and status)."""

    async def work(js: JetStreamContext) -> dict[str, Any]:
        info = await js.consumer_info(relay.stream, name)
        return {"pending": info.num_pending, "ack_pending": info.num_ack_pending}

    return asyncio.run(relay._with_connection(work))
