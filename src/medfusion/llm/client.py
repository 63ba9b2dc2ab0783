"""The general model as the rest of the platform sees it: one object, several named models (``default``,
``fast``, ``large`` …), each an OpenAI-compatible endpoint behind retries, a circuit breaker, a concurrency
cap, a response cache, accounting and — for ``external`` endpoints — de-identification.

Every call returns a :class:`Completion` or an :class:`Unavailable`; nothing here raises for a model that is
missing, slow or broken. With nothing configured, :attr:`GeneralModel.available` is false and every call
answers ``Unavailable(no_model)`` at once — the specialist path is a first-class state.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from medfusion.llm.accounting import CallRecord, Ledger, priced
from medfusion.llm.cache import ResponseCache, cache_key
from medfusion.llm.messages import Completion, Delta, Message, Reason, Reply, ToolSpec, Unavailable
from medfusion.llm.openai_compat import ChatRequest, OpenAICompatible, Provider, ProviderError
from medfusion.llm.resilience import CircuitBreaker, Limiter, backoff_seconds
from medfusion.llm.shield import Shield, shield_key
from medfusion.settings import Settings

DEFAULT = "default"
T = TypeVar("T", bound=BaseModel)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


@dataclass
class Endpoint:
    alias: str
    model: str
    provider: Provider
    breaker: CircuitBreaker
    limiter: Limiter
    external: bool = False
    price_input_per_1k: float = 0.0
    price_output_per_1k: float = 0.0


@dataclass
class Structured(Generic[T]):
    value: T
    completion: Completion
    repairs: int = 0


@dataclass
class Policy:
    timeout: float = 60.0
    max_retries: int = 2
    sleep: Callable[[float], None] = field(default=time.sleep)


def extract_json(text: str) -> str:
    """The JSON object in a reply, tolerating a code fence or a sentence around it."""
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text.strip()


class GeneralModel:
    def __init__(
        self,
        endpoints: dict[str, Endpoint] | None = None,
        policy: Policy | None = None,
        cache: ResponseCache | None = None,
        key: bytes | None = None,
    ) -> None:
        self.endpoints = endpoints or {}
        self.policy = policy or Policy()
        self.cache = cache
        self._key = key
        self.ledger = Ledger()
        self.known_names: tuple[str, ...] = ()

    def protecting(self, names: Sequence[str]) -> GeneralModel:
        """The same model (endpoints, breakers, cache, ledger shared) that also treats ``names`` as
        identifiers when de-identifying for external endpoints — e.g. the patient the run is about, whose
        name the analyzer could not find by context alone."""
        view = copy.copy(self)
        view.known_names = tuple(dict.fromkeys([*self.known_names, *(n for n in names if n)]))
        return view

    @classmethod
    def from_settings(cls, settings: Settings) -> GeneralModel:
        endpoints: dict[str, Endpoint] = {}

        def endpoint(
            alias: str,
            base_url: str,
            model: str,
            api_key: str | None,
            external: bool,
            price_in: float,
            price_out: float,
        ) -> Endpoint:
            return Endpoint(
                alias=alias,
                model=model,
                provider=OpenAICompatible(base_url, api_key, settings.llm_connect_timeout_seconds, alias),
                breaker=CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_reset_seconds),
                limiter=Limiter(settings.llm_max_concurrency),
                external=external,
                price_input_per_1k=price_in,
                price_output_per_1k=price_out,
            )

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        if settings.llm_base_url and settings.llm_model:
            endpoints[DEFAULT] = endpoint(
                DEFAULT,
                settings.llm_base_url,
                settings.llm_model,
                key,
                settings.llm_external,
                settings.llm_price_input_per_1k,
                settings.llm_price_output_per_1k,
            )
        for alias, named in settings.llm_models.items():
            base = named.base_url or settings.llm_base_url
            if not base:
                continue
            endpoints[alias] = endpoint(
                alias,
                base,
                named.model,
                named.api_key.get_secret_value() if named.api_key else key,
                settings.llm_external if named.external is None else named.external,
                settings.llm_price_input_per_1k
                if named.price_input_per_1k is None
                else named.price_input_per_1k,
                settings.llm_price_output_per_1k
                if named.price_output_per_1k is None
                else named.price_output_per_1k,
            )
        needs_key = any(e.external for e in endpoints.values())
        return cls(
            endpoints,
            Policy(timeout=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries),
            ResponseCache(settings.resolved_data_dir / "llm-cache.sqlite") if settings.llm_cache else None,
            shield_key(settings.resolved_data_dir) if needs_key else None,
        )

    @property
    def available(self) -> bool:
        return bool(self.endpoints)

    def describe(self) -> dict[str, str]:
        """Configured names → model (for provenance and ``llm ping``), no URLs or keys."""
        return {alias: e.model for alias, e in self.endpoints.items()}

    def resolve(self, alias: str) -> Endpoint | None:
        """A named model, else the default (code may ask for ``fast`` where only one model runs)."""
        return (
            self.endpoints.get(alias)
            or self.endpoints.get(DEFAULT)
            or next(iter(self.endpoints.values()), None)
        )

    def ping(self, alias: str = DEFAULT) -> Reply:
        """One short, uncached, non-streaming chat call (``medfusion llm ping``)."""
        return self.chat(
            [Message(role="user", content="ping — reply with one word.")],
            model=alias,
            max_tokens=8,
            temperature=0.2,
            purpose="ping",
        )

    def close(self) -> None:
        for e in self.endpoints.values():
            e.provider.close()

    # -- calls ------------------------------------------------------------------------------------
    def _prepare(
        self,
        endpoint: Endpoint,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        json_schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int | None,
    ) -> tuple[ChatRequest, Shield | None]:
        shield = None
        outgoing = list(messages)
        if endpoint.external:
            if self._key is None:
                raise RuntimeError("external endpoint without a de-identification key")
            shield = Shield(self._key)
            outgoing = shield.protect(outgoing, self.known_names)
        request = ChatRequest(
            messages=tuple(outgoing),
            model=endpoint.model,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tuple(tools),
            json_schema=json_schema,
        )
        return request, shield

    def _record(self, endpoint: Endpoint, purpose: str, reply: Reply, streamed: bool = False) -> None:
        if isinstance(reply, Completion):
            record = CallRecord(
                alias=endpoint.alias,
                model=reply.model,
                purpose=purpose,
                outcome="ok",
                usage=reply.usage,
                latency_ms=reply.latency_ms,
                attempts=reply.attempts,
                cached=reply.cached,
                streamed=streamed,
            )
        else:
            record = CallRecord(
                alias=endpoint.alias,
                model=endpoint.model,
                purpose=purpose,
                outcome=reply.reason.value,
                attempts=reply.attempts,
                streamed=streamed,
            )
        self.ledger.add(record)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str = DEFAULT,
        tools: Sequence[ToolSpec] = (),
        json_schema: dict[str, Any] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        purpose: str = "",
    ) -> Reply:
        endpoint = self.resolve(model)
        if endpoint is None:
            return Unavailable(reason=Reason.no_model, detail="no general model configured", alias=model)
        request, shield = self._prepare(endpoint, messages, tools, json_schema, temperature, max_tokens)
        key = cache_key(endpoint.provider.base_url, request.body(stream=False))
        if self.cache is not None and temperature == 0:
            hit = self.cache.get(key)
            if hit is not None:
                hit = hit.model_copy(
                    update={
                        "cached": True,
                        "alias": endpoint.alias,
                        "latency_ms": 0.0,
                        "usage": hit.usage.model_copy(update={"cost": 0.0}),
                    }
                )
                reply: Reply = shield.restore(hit) if shield else hit
                self._record(endpoint, purpose, reply)
                return reply
        reply = self._call(endpoint, request)
        if isinstance(reply, Completion):
            reply = reply.model_copy(
                update={
                    "usage": priced(reply.usage, endpoint.price_input_per_1k, endpoint.price_output_per_1k)
                }
            )
            if self.cache is not None and temperature == 0:
                self.cache.put(key, reply)
            if shield:
                reply = shield.restore(reply)
        self._record(endpoint, purpose, reply)
        return reply

    def _call(self, endpoint: Endpoint, request: ChatRequest) -> Reply:
        deadline = time.monotonic() + self.policy.timeout
        last: ProviderError | None = None
        attempt = 0
        for attempt in range(1, self.policy.max_retries + 2):
            if not endpoint.breaker.allow():
                return Unavailable(
                    reason=Reason.circuit_open,
                    detail="endpoint failing; cooling down",
                    alias=endpoint.alias,
                    attempts=attempt - 1,
                )
            if not endpoint.limiter.acquire(deadline - time.monotonic()):
                return Unavailable(
                    reason=Reason.timeout,
                    detail="no free request slot before the deadline",
                    alias=endpoint.alias,
                    attempts=attempt - 1,
                )
            try:
                completion = endpoint.provider.chat(request, deadline)
            except ProviderError as error:
                last = error
                endpoint.breaker.failure()
            else:
                endpoint.breaker.success()
                return completion.model_copy(update={"attempts": attempt, "alias": endpoint.alias})
            finally:
                endpoint.limiter.release()
            if not last.retryable:
                break
            wait = backoff_seconds(attempt - 1, last.retry_after)
            if time.monotonic() + wait >= deadline:
                break
            self.policy.sleep(wait)
        assert last is not None
        return Unavailable(reason=last.reason, detail=last.detail, alias=endpoint.alias, attempts=attempt)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str = DEFAULT,
        tools: Sequence[ToolSpec] = (),
        temperature: float = 0.0,
        max_tokens: int | None = None,
        purpose: str = "",
    ) -> Iterator[Delta | Completion | Unavailable]:
        """Deltas, then one final :class:`Completion` or :class:`Unavailable`. A failure before the first
        delta is retried like :meth:`chat`; after it, the stream ends with ``Unavailable`` carrying the
        partial text (flagged, never an answer)."""
        endpoint = self.resolve(model)
        if endpoint is None:
            yield Unavailable(reason=Reason.no_model, detail="no general model configured", alias=model)
            return
        request, shield = self._prepare(endpoint, messages, tools, None, temperature, max_tokens)
        deadline = time.monotonic() + self.policy.timeout
        final: Reply | None = None
        attempt = 0
        for attempt in range(1, self.policy.max_retries + 2):
            if not endpoint.breaker.allow():
                final = Unavailable(
                    reason=Reason.circuit_open,
                    detail="endpoint failing; cooling down",
                    alias=endpoint.alias,
                    attempts=attempt - 1,
                )
                break
            if not endpoint.limiter.acquire(deadline - time.monotonic()):
                final = Unavailable(
                    reason=Reason.timeout,
                    detail="no free request slot",
                    alias=endpoint.alias,
                    attempts=attempt - 1,
                )
                break
            delivered = False
            try:
                for event in endpoint.provider.stream(request, deadline):
                    if isinstance(event, Delta):
                        delivered = True
                        yield Delta(text=shield.restore_text(event.text)) if shield else event
                    else:
                        usage = priced(event.usage, endpoint.price_input_per_1k, endpoint.price_output_per_1k)
                        event = event.model_copy(
                            update={"usage": usage, "attempts": attempt, "alias": endpoint.alias}
                        )
                        final = shield.restore(event) if shield else event
                endpoint.breaker.success()
                break
            except ProviderError as error:
                endpoint.breaker.failure()
                partial = shield.restore_text(error.partial_text) if shield else error.partial_text
                final = Unavailable(
                    reason=error.reason,
                    detail=error.detail,
                    alias=endpoint.alias,
                    partial_text=partial,
                    attempts=attempt,
                )
                wait = backoff_seconds(attempt - 1, error.retry_after)
                if delivered or not error.retryable or time.monotonic() + wait >= deadline:
                    break
                self.policy.sleep(wait)
            finally:
                endpoint.limiter.release()
        if final is None:  # the stream closed without a final message
            final = Unavailable(
                reason=Reason.bad_response,
                detail="stream ended early",
                alias=endpoint.alias,
                attempts=attempt,
            )
        self._record(endpoint, purpose, final, streamed=True)
        yield final

    def structured(
        self,
        messages: Sequence[Message],
        schema: type[T],
        *,
        model: str = DEFAULT,
        repairs: int = 2,
        purpose: str = "",
        temperature: float = 0.0,
    ) -> Structured[T] | Unavailable:
        """A reply validated against ``schema``. The schema goes out as ``response_format``; an endpoint
        that rejects that (400) is asked again with the schema only in the prompt. Invalid JSON or fields
        get up to ``repairs`` follow-up turns quoting the validation errors, then ``invalid_output``."""
        json_schema: dict[str, Any] | None = {
            "name": schema.__name__,
            "schema": schema.model_json_schema(),
        }
        history = list(messages)
        problems = ""
        for repair in range(repairs + 1):
            reply = self.chat(
                history, model=model, json_schema=json_schema, purpose=purpose, temperature=temperature
            )
            if isinstance(reply, Unavailable) and reply.reason is Reason.bad_request and json_schema:
                json_schema = None
                reply = self.chat(history, model=model, purpose=purpose, temperature=temperature)
            if isinstance(reply, Unavailable):
                return reply
            try:
                return Structured(schema.model_validate_json(extract_json(reply.text)), reply, repair)
            except ValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                    for e in error.errors()[:8]
                )
            history = [
                *history,
                Message(role="assistant", content=reply.text),
                Message(
                    role="user",
                    content="上面的输出不符合要求的 JSON 格式 (invalid JSON for the schema): "
                    f"{problems}。请只输出一个符合 schema 的 JSON 对象 (only the JSON object).\n"
                    f"schema: {json.dumps(schema.model_json_schema(), ensure_ascii=False)}",
                ),
            ]
        return Unavailable(
            reason=Reason.invalid_output, detail=problems[:300], alias=model, attempts=repairs + 1
        )


_shared: tuple[Settings, GeneralModel] | None = None


def get_general_model(settings: Settings) -> GeneralModel:
    """One client per settings object (per process), so breakers, limits and the ledger are shared."""
    global _shared
    if _shared is None or _shared[0] is not settings:
        if _shared is not None:
            _shared[1].close()
        _shared = (settings, GeneralModel.from_settings(settings))
    return _shared[1]
