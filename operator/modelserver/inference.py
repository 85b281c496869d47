"""One request path for every transport: which model, which id, what went wrong, what is counted.

REST and gRPC differ only in how bytes become a request and an answer becomes
bytes. Everything between (the model is loaded, the model and version exist,
the request id is usable, decode and validate, the injected faults, micro-batched
prediction, drift and feedback recording, how each failure maps to a status,
what a refusal logs, the request counter and latency histogram) is decided here
once, so a client sees the same rules and the rollout analysis the same series
whichever protocol it speaks. The status is the HTTP one; gRPC translates it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from modelserver.batching import MicroBatcher
from modelserver.inputs import Decoded, InputError, check_request_id
from modelserver.records import RecordStoreError
from modelserver.service import (
    InjectedFaultError,
    ModelService,
    Prediction,
    UnknownRequestError,
)
from modelserver.settings import Settings

log = logging.getLogger("modelserver.http")
T = TypeVar("T")
INTERNAL_ERROR = "internal error; see the server log"
NOT_LOADED = "model not loaded yet"


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What a request came to: `value` when `status` is 200, else `error` for the client."""

    status: int
    value: T | None
    error: str
    request_id: str


class InferencePath:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: ModelService | None = None
        # Set on SIGTERM: readiness fails (REST and gRPC) while requests are still answered.
        self.draining = False
        self._batcher: MicroBatcher[Decoded, Prediction] | None = None

    def attach(self, service: ModelService) -> None:
        if self.settings.microbatch:
            self._batcher = MicroBatcher(service.infer, self.settings.max_batch_rows)
        self.service = service

    async def predict(self, decoded: Decoded) -> Prediction:
        """Predict and record one decoded request, coalesced with its neighbours."""
        delay = self.settings.fault_latency_seconds
        if delay > 0:
            await asyncio.sleep(delay)
        if self._batcher is not None:
            return await self._batcher.submit(decoded, decoded.rows)
        assert self.service is not None
        return self.service.infer([decoded])[0]

    async def answer(
        self,
        endpoint: str,
        model: str,
        version: str | None,
        supplied_id: str | None,
        work: Callable[[ModelService, str], Awaitable[T]],
        copy: bool = False,
    ) -> Answer[T]:
        """Run `work(service, request_id)` for model `model` (and `version`), mapping every
        failure to its status, logging refusals without client data, counting the request:
        a champion's shadow `copy` apart from clients' requests (modelserver.shadow)."""
        start = time.perf_counter()
        service = self.service
        if service is None:
            return Answer(503, None, NOT_LOADED, "")
        minted = service.new_request_id()
        request_id = minted
        # Only for the log: what is known about the refusal without quoting the client.
        detail: dict[str, Any] = {}
        value: T | None = None
        error = ""
        try:
            if supplied_id:
                # Echoed in the X-Request-Id response header: a CR/LF there would make
                # aiohttp drop the connection after the request was counted.
                request_id = check_request_id(supplied_id, "the X-Request-Id header")
            service.check_model(model, version)
            value = await work(service, request_id)
            status = 200
        except InputError as exc:
            status, error = exc.status, str(exc)
            detail["kind"] = exc.kind
            if exc.missing:
                detail["missing_features"] = list(exc.missing)  # the model's own names
            if exc.unknown:
                detail["unknown_features"] = exc.unknown
        except UnknownRequestError as exc:
            status, error = 404, str(exc.args[0])
            detail["kind"] = "unknown_request"
        except InjectedFaultError as exc:
            status, error = 500, str(exc)
        except RecordStoreError as exc:
            # Nothing was saved: the client keeps the label and retries.
            status, error = 503, f"the inference-records store is unavailable, retry: {exc}"
            detail["kind"] = "records_store_unavailable"
        except Exception:
            log.exception("%s failed", endpoint, extra=_logged_id(request_id, minted))
            status, error = 500, INTERNAL_ERROR
        if copy:
            detail["shadow_copy"] = True
        if status >= 400 and status != 500:
            log.info(
                "%s refused",
                endpoint,
                extra={**detail, "status": status, **_logged_id(request_id, minted)},
            )
        elapsed = time.perf_counter() - start
        if copy:
            service.metrics.shadow.observe_served(endpoint, status, elapsed)
        else:
            service.metrics.observe_request(endpoint, status, elapsed)
        return Answer(status, value, error, request_id)


def _logged_id(request_id: str, minted: str) -> dict[str, str]:
    """The request id for a log line, only if the server chose it (never the client's)."""
    return {"request_id": minted} if request_id == minted else {}
