"""Client traffic for a ModelDeployment's Service on the local cluster: requests
to its ClusterIP, which kube-proxy routes to the ready pods behind it.

Each request opens a new connection, so kube-proxy picks an endpoint per request
(its iptables mode balances connections, not requests): the replica ratio of a
canary, and the selector switch of blue/green, decide which model answers, and
what Prometheus scrapes from the pods is what these clients got.

Requests come from the model server's load generator (bundled dataset rows,
optional drift). A share of answered requests gets its true label posted back as
feedback to the server that answered (the `X-Served-By` address it names), since
only it remembers the prediction; or, with the inference-records store
(`feedback_via_service`), to the Service, any replica, `feedback_delay` seconds
later, as labels that arrive later do. Per model version (the `X-Model-Version`
header) it records status codes and the longest gap between successful answers,
so a test can say the stable version never stopped serving; a request nobody
answered counts under NO_ANSWER.

Traffic goes only to the cluster's own ranges (`allowed`), whatever a Service or
a server's header says, and stops after `duration` seconds at the latest.

Dev and test tooling, not the operator.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import random
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from kubernetes import client

from modelserver.datasets import load_dataset
from modelserver.loadgen import LoadConfig, Prepared, prepare_requests

log = logging.getLogger("modelrollout.devenv.traffic")

# Distinct request bodies, reused round-robin (as the load generator does).
POOL_SIZE = 1000
# A client's patience. On 2 cores shared by the control plane, the operator and a
# crash-looping canary reloading scikit-learn, a healthy server's answer has taken
# over 5 s: slow, not lost.
REQUEST_TIMEOUT_SECONDS = 15.0
# Answers remembered for `shares()`: enough for a few seconds at demo rates.
RECENT_ANSWERS = 2000
# The version of a request that got no answer at all (refused, reset, timed out).
NO_ANSWER = "no-answer"
# The longest any Traffic sends unless told otherwise: a forgotten one stops.
DEFAULT_DURATION_SECONDS = 900.0
SERVICE_WAIT_SECONDS = 30.0

Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


class TrafficError(RuntimeError):
    """The Service cannot be sent to (missing, no ClusterIP, outside the cluster's ranges)."""


@dataclass
class VersionStats:
    codes: Counter[str] = field(default_factory=Counter)
    feedback: Counter[str] = field(default_factory=Counter)
    first_ok: float | None = None
    last_ok: float | None = None
    longest_ok_gap: float = 0.0
    last_answered: float | None = None

    @property
    def answered(self) -> int:
        return sum(self.codes.values())

    @property
    def failed(self) -> int:
        """Answers that were not 2xx."""
        return sum(c for code, c in self.codes.items() if not code.startswith("2"))

    def record(self, code: str, at: float) -> None:
        self.codes[code] += 1
        self.last_answered = at
        if code.startswith("2"):
            if self.last_ok is not None:
                self.longest_ok_gap = max(self.longest_ok_gap, at - self.last_ok)
            self.first_ok = self.first_ok if self.first_ok is not None else at
            self.last_ok = at

    def copy(self) -> VersionStats:
        return VersionStats(
            Counter(self.codes),
            Counter(self.feedback),
            self.first_ok,
            self.last_ok,
            self.longest_ok_gap,
            self.last_answered,
        )


def error_code(error: BaseException) -> str:
    """`error:<type>`, with the system error's name when a connection failed
    (refused, unreachable, reset), since each points somewhere else."""
    cause = getattr(error, "os_error", None) or error.__cause__
    number = getattr(cause, "errno", None)
    name = errno.errorcode.get(number, str(number)) if isinstance(number, int) else None
    return f"error:{type(error).__name__}" + (f"({name})" if name else "")


def within(address: str, allowed: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in allowed)


def service_url(
    core: client.CoreV1Api,
    namespace: str,
    service: str,
    allowed: Networks,
    wait: float = SERVICE_WAIT_SECONDS,
) -> str:
    """`http://<ClusterIP>:<port>` of the Service, once it exists (within `wait` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            spec = core.read_namespaced_service(service, namespace).spec
            break
        except client.ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise TrafficError(f"Service {namespace}/{service}: {error.reason}") from error
            time.sleep(0.5)
    address = spec.cluster_ip if spec else None
    ports = (spec.ports if spec else None) or []
    if not address or address == "None" or not ports:
        raise TrafficError(f"Service {namespace}/{service} has no ClusterIP and port")
    if not within(address, allowed):
        raise TrafficError(
            f"Service {namespace}/{service}: {address} is outside this cluster's ranges"
        )
    return f"http://{address}:{ports[0].port}"


def wait_until_routed(url: str, timeout: float = SERVICE_WAIT_SECONDS) -> None:
    """Until a TCP connection to `url`'s ClusterIP and port succeeds: kube-proxy
    programs a new Service a moment after the API server has it (and after its
    endpoints are ready), and until then the node's namespace, which has no
    default route, answers "network unreachable". A client that starts at once
    would count that as the Service failing."""
    parts = urlsplit(url)
    address = (parts.hostname or "", parts.port or 80)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(address, timeout=2.0):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise TrafficError(f"{url}: not routed after {timeout:.0f} s: {error}") from error
            time.sleep(0.2)


class Traffic:
    """Sends `rate` requests per second to `service` in `namespace` until stopped
    (or for `duration` seconds)."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        service: str,
        *,
        model: str,
        allowed: Networks,
        dataset: str = "wine",
        rate: float = 20.0,
        feedback_share: float = 0.0,
        feedback_via_service: bool = False,
        feedback_delay: float = 0.0,
        drift_shift: float = 0.0,
        concurrency: int = 8,
        seed: int = 0,
        duration: float = DEFAULT_DURATION_SECONDS,
        service_wait: float = SERVICE_WAIT_SECONDS,
    ) -> None:
        self.namespace = namespace
        self.service = service
        self.model = model
        self.allowed = list(allowed)
        self.rate = rate
        self.feedback_share = feedback_share
        self.feedback_via_service = feedback_via_service
        self.feedback_delay = feedback_delay
        self.concurrency = concurrency
        self.duration = duration
        self.service_wait = service_wait
        self._core = client.CoreV1Api(api)
        self._random = random.Random(seed)  # noqa: S311 - sampling feedback, not security
        load = LoadConfig(
            urls=(), model=model, dataset=dataset, drift_shift=drift_shift, seed=seed, batch=1
        )
        self._pool: list[Prepared] = prepare_requests(load, load_dataset(dataset), POOL_SIZE)
        self._url = ""
        self._stats: dict[str, VersionStats] = {}
        self._recent: deque[tuple[float, str]] = deque(maxlen=RECENT_ANSWERS)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._later: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._url = service_url(
            self._core, self.namespace, self.service, self.allowed, self.service_wait
        )
        wait_until_routed(self._url, self.service_wait)
        self._thread = threading.Thread(target=self._request_loop, name="traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 5)

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What tests and the demo read.

    @property
    def url(self) -> str:
        return self._url

    def stats(self) -> dict[str, VersionStats]:
        """Model version (or NO_ANSWER) -> what its answers were, since the start."""
        with self._lock:
            return {version: s.copy() for version, s in self._stats.items()}

    def shares(self, window: float = 5.0) -> dict[str, float]:
        """Model version -> share of the requests of the last `window` seconds."""
        since = time.monotonic() - window
        with self._lock:
            recent = Counter(v for at, v in self._recent if at >= since)
        total = sum(recent.values())
        return {v: c / total for v, c in sorted(recent.items())} if total else {}

    def summary(self) -> dict[str, Any]:
        return {
            "service": f"{self.namespace}/{self.service}",
            "url": self._url,
            "shares": {v: round(s, 3) for v, s in self.shares().items()},
            "versions": {
                v: {"codes": dict(s.codes), "feedback": dict(s.feedback)}
                for v, s in sorted(self.stats().items())
            },
        }

    # Sending requests.

    def _request_loop(self) -> None:
        try:
            asyncio.run(self._send_all())
        except Exception:  # a bug here must show, not silently end the traffic
            log.exception("traffic to %s/%s stopped", self.namespace, self.service)
            raise

    async def _send_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        # A new connection per request: kube-proxy balances connections.
        connector = aiohttp.TCPConnector(force_close=True, limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            next_index = 0
            start = time.monotonic()
            end = start + self.duration

            async def worker() -> None:
                nonlocal next_index
                while not self._stopping.is_set():
                    i = next_index
                    next_index += 1
                    # Open loop: request i is due at start + i / rate, whatever came before.
                    due = start + i / self.rate
                    if due >= end:
                        return
                    while (delay := due - time.monotonic()) > 0:
                        if self._stopping.is_set():
                            return
                        await asyncio.sleep(min(delay, 0.5))
                    await self._send(session, self._pool[i % len(self._pool)])

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            # Labels still due are posted (within feedback_delay) before the session closes.
            await asyncio.gather(*self._later, return_exceptions=True)

    async def _send(self, session: aiohttp.ClientSession, item: Prepared) -> None:
        url = f"{self._url}/v2/models/{self.model}/infer"
        version, served_by, request_id = NO_ANSWER, "", None
        try:
            async with session.post(url, data=item.body, headers=_JSON) as response:
                body = await response.read()
                code = str(response.status)
                version = response.headers.get("X-Model-Version", "unknown")
                served_by = response.headers.get("X-Served-By", "")
                if response.status == 200:
                    request_id = json.loads(body).get("id") or response.headers.get("X-Request-Id")
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            code = error_code(error)
        self._record(version, code)
        if request_id and served_by and self._random.random() < self.feedback_share:
            if self.feedback_via_service:
                served_by = urlsplit(self._url).netloc
            labelling = self._feedback(session, version, served_by, request_id, item)
            if self.feedback_delay <= 0:
                await labelling
                return
            # The label comes later, without holding up this worker's next request.
            later = asyncio.create_task(labelling)
            self._later.add(later)
            later.add_done_callback(self._later.discard)

    async def _feedback(
        self,
        session: aiohttp.ClientSession,
        version: str,
        served_by: str,
        request_id: str,
        item: Prepared,
    ) -> None:
        if self.feedback_delay > 0:
            await asyncio.sleep(self.feedback_delay)
            if self._stopping.is_set():
                return
        host = served_by.rsplit(":", 1)[0].strip("[]")
        if not within(host, self.allowed):
            code = "refused:outside-cluster"
        else:
            url = f"http://{served_by}/v2/models/{self.model}/feedback"
            body = json.dumps({"id": request_id, "labels": item.labels}).encode()
            try:
                async with session.post(url, data=body, headers=_JSON) as response:
                    await response.read()
                    code = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as error:
                code = error_code(error)
        with self._lock:
            self._stats.setdefault(version, VersionStats()).feedback[code] += 1

    def _record(self, version: str, code: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._stats.setdefault(version, VersionStats()).record(code, now)
            self._recent.append((now, version))


_JSON = {"Content-Type": "application/json"}
