"""Shadow traffic, the champion's side: copies of sampled live requests to the challenger.

In a rollout's shadow phase the stable revision (the champion) keeps answering
every client and sends a copy of a sample of its requests to the canary (the
challenger), whose answers reach no client. The champion compares each answer
with its own prediction for the same rows (modelserver.agreement), so an
analysis can gate on how often the challenger agrees on live inputs before it
serves anyone.

A copy costs the client nothing but CPU:
- it is made once the client's answer is computed, as a task on the event loop,
  over one reused aiohttp session;
- at most MODELSERVER_SHADOW_MAX_IN_FLIGHT copies wait for answers; a copy
  beyond is dropped and counted, so a slow challenger holds bounded memory and
  sockets;
- each has MODELSERVER_SHADOW_TIMEOUT_SECONDS in all;
- a challenger that refuses connections is not tried again for a second (the
  copies of that second count as failed): a refused connect costs the champion
  about 0.2 ms of CPU, as much as half of serving the request;
- whatever the challenger does (slow, down, 4xx/5xx, garbage) is counted in
  modelserver_shadow_requests_total{outcome} and logged when it starts, never
  raised.

Which requests: those `records.sampled` picks for the percent, by a hash of the
request id, so every champion replica mirrors the same set (and, the hash being
one, a request the records store samples at a rate of at least the percent is
recorded too). The copy is the client's body as sent (JSON or the binary tensor
extension) to the unversioned route (the challenger serves another version),
with the request's id in X-Request-Id and `X-Modelrollout-Shadow: 1`. That header
tells the challenger to serve the copy as usual, so its drift windows see live
inputs, but to count it in modelserver_shadow_served_total instead of
modelserver_requests_total: the canary's error rate, latency and traffic share
stay what clients got. A copy is never mirrored again. Only REST requests
answered 200 with the `predict` output are mirrored, since there is nothing to
compare otherwise; gRPC requests are not mirrored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import numpy as np
import numpy.typing as npt

from modelserver.agreement import ShadowAnswerError
from modelserver.records import sampled
from modelserver.service import ModelService
from modelserver.settings import VERSION_HEADER, Settings
from modelserver.shadow_config import CONFIG_STAT_SECONDS, ShadowConfigFile
from modelserver.tensors import HEADER_LENGTH, decode_raw, parse_json, split_body

log = logging.getLogger("modelserver.shadow")

SHADOW_HEADER = "X-Modelrollout-Shadow"
# What the challenger needs to read the body as the champion did.
FORWARDED_HEADERS = ("Content-Type", HEADER_LENGTH)
# A challenger_version label longer than this, or with other than visible ASCII,
# is not a version this project's server sends: it is recorded as unknown.
MAX_VERSION_LENGTH = 64
# Seconds no copy is sent after the challenger refused a connection (nothing listens,
# no such host); those copies count as failed.
REFUSED_BACKOFF_SECONDS = 1.0
Route = Literal["v2", "v1"]


def is_copy(headers: Mapping[str, str]) -> bool:
    """Whether a request is a champion's copy, served for comparison only."""
    return headers.get(SHADOW_HEADER) == "1"


@dataclass(frozen=True)
class ShadowCopy:
    """One answered request, as the challenger gets it, and what the champion predicted."""

    route: Route
    body: bytes
    headers: Mapping[str, str]
    request_id: str
    predicted: npt.NDArray[Any]


class ShadowMirror:
    def __init__(self, settings: Settings, service: ModelService) -> None:
        self.config = ShadowConfigFile(
            settings.shadow_config_file, settings.revision, settings.shadow_url.rstrip("/")
        )
        self._paths: dict[Route, str] = {
            "v2": f"/v2/models/{quote(settings.model_name, safe='')}/infer",
            "v1": f"/v1/models/{quote(settings.model_name, safe='')}:predict",
        }
        self._service = service
        self._metrics = service.metrics.shadow
        self._max_in_flight = settings.shadow_max_in_flight
        self._timeout = settings.shadow_timeout_seconds
        # An answer is far smaller than the largest request; this bounds a broken one.
        self._max_answer_bytes = settings.max_body_bytes
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        # The kind of failure last logged; empty while copies are compared.
        self._failing = ""
        # Until then (monotonic), copies are not sent: the challenger refused to connect.
        self._refused_until = 0.0

    def start(self) -> None:
        """Read the shadow configuration now, and again every second, on the event loop."""
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def wanted(self, request_id: str) -> bool:
        """Whether this request is in the sample the shadow configuration asks for."""
        percent = self.config.percent
        return percent > 0 and sampled(request_id, percent / 100)

    def offer(self, copy: ShadowCopy) -> None:
        """Send `copy` in the background, or count it dropped; never waits, never raises."""
        if len(self._tasks) >= self._max_in_flight:
            self._metrics.count_outcome("", "dropped")
            return
        if time.monotonic() < self._refused_until:
            # Another connection attempt would cost ~0.2 ms of the champion's CPU for the
            # answer the last one got a moment ago.
            self._metrics.count_outcome("", "failed")
            return
        task = asyncio.get_running_loop().create_task(self._send(copy))
        self._tasks.add(task)
        self._metrics.in_flight.set(len(self._tasks))
        task.add_done_callback(self._answered)

    async def close(self) -> None:
        """Stop reading the configuration and give up on the copies in flight."""
        for task in (self._watcher, *self._tasks):
            if task is not None:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _watch(self) -> None:
        while True:
            try:
                self._metrics.mirror_percent.set(self.config.refresh().percent)
            except Exception:
                # Keep the last decision: a bug here must not stop the champion serving.
                log.exception("reading the shadow configuration failed")
            await asyncio.sleep(CONFIG_STAT_SECONDS)

    def _answered(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._metrics.in_flight.set(len(self._tasks))

    async def _send(self, copy: ShadowCopy) -> None:
        version = ""
        headers = {**copy.headers, "X-Request-Id": copy.request_id, SHADOW_HEADER: "1"}
        try:
            session = self._session or self._open()
            url = self.config.state.url.rstrip("/") + self._paths[copy.route]
            async with session.post(url, data=copy.body, headers=headers) as r:
                version = _version(r.headers.get(VERSION_HEADER, ""))
                raw = await _read(r, self._max_answer_bytes)
                if r.status != 200:
                    self._failed(version, "failed", f"HTTP {r.status}")
                    return  # past the `else:` below, which follows a comparison only
                answered = predictions(copy.route, r.headers, raw)
            self._service.compare_shadow(version, copy.predicted, answered)
        except TimeoutError:
            self._failed(version, "timeout", f"no answer within {self._timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            self._refused_until = time.monotonic() + REFUSED_BACKOFF_SECONDS
            self._failed(version, "failed", f"{type(exc).__name__}: {exc}", type(exc).__name__)
        except aiohttp.ClientError as exc:
            self._failed(version, "failed", f"{type(exc).__name__}: {exc}", type(exc).__name__)
        except ShadowAnswerError as exc:
            self._failed(version, "failed", str(exc), type(exc).__name__)
        except ValueError:  # the answer's JSON or binary framing (InputError)
            self._failed(version, "failed", "an answer that is not an inference response")
        else:
            if self._failing:
                log.info("shadow copies are compared again")
                self._failing = ""

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_in_flight),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    def _failed(self, version: str, outcome: str, why: str, kind: str = "") -> None:
        """Count the copy; log `why` when this `kind` of failure (`why` itself unless
        given) follows copies that were compared or failed otherwise."""
        self._metrics.count_outcome(version, outcome)
        kind = kind or why
        if kind != self._failing:
            log.warning(
                "shadow copies failing: %s; counted, clients unaffected",
                why,
                extra={"outcome": outcome},
            )
            self._failing = kind


def predictions(route: Route, headers: Mapping[str, str], raw: bytes) -> list[object]:
    """The `predict` output of an answer, row by row; ValueError when it has none."""
    header_length = headers.get(HEADER_LENGTH)
    if header_length is None:
        body, binary = parse_json(raw), b""
    else:
        body, binary = split_body(raw, header_length)
    if not isinstance(body, dict):
        raise ShadowAnswerError("an answer that is not a JSON object")
    if route == "v1":
        found = body.get("predictions")
        if not isinstance(found, list):
            raise ShadowAnswerError("an answer without a 'predictions' list")
        return found
    outputs = body.get("outputs")
    offset = 0
    for output in outputs if isinstance(outputs, list) else ():
        if not isinstance(output, dict):
            break
        parameters = output.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if output.get("name") == "predict":
            if size is None:
                data = output.get("data")
                if isinstance(data, list):
                    return data
                break
            if type(size) is not int:
                break
            values = decode_raw(
                "predict",
                output.get("datatype"),
                output.get("shape"),
                binary[offset : offset + size],
            )
            return values.tolist() if isinstance(values, np.ndarray) else values
        if type(size) is int:
            offset += size
    raise ShadowAnswerError("an answer without a 'predict' output")


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ShadowAnswerError(f"an answer over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _version(raw: str) -> str:
    if len(raw) <= MAX_VERSION_LENGTH and all("!" <= c <= "~" for c in raw):
        return raw
    return ""


__all__ = ["SHADOW_HEADER", "ShadowCopy", "ShadowMirror", "is_copy", "predictions"]
