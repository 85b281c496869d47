"""Client traffic for a ModelDeployment's Service on the local cluster, routed
the way kube-proxy routes it.

There is no kube-proxy (nor pod network) under KWOK, so this component plays
its part: it resolves the `<md-name>` Service's ready EndpointSlice endpoints
to pod names, and pod names to the pod runner's loopback ports (its file_sd
file), refreshes that list continuously, and picks an endpoint uniformly at
random for each request, as kube-proxy's iptables mode does. So the replica
ratio of a canary, and the selector switch of blue/green, really shape which
model answers, and what Prometheus sees is what clients got.

Requests come from the model server's load generator (bundled dataset rows,
optional drift); a share of answered requests gets its true label posted back
as feedback to the server that answered, since only it remembers the
prediction. Per model version it records status codes and the longest gap
between successful answers, so a test can say the stable version never
stopped serving.

Dev and test tooling, not the operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config

from modelrollout.devenv.podrunner import PodKey, read_targets, stop_on_signals, wait_for_signal
from modelserver.datasets import load_dataset
from modelserver.loadgen import LoadConfig, Prepared, prepare_requests

log = logging.getLogger("modelrollout.devenv.traffic")

# kube-proxy reacts to EndpointSlice changes within a fraction of a second; so
# does this, while polling the API server only twice a second.
REFRESH_SECONDS = 0.5
# Distinct request bodies, reused round-robin (as the load generator does).
POOL_SIZE = 1000
REQUEST_TIMEOUT_SECONDS = 5.0
# Answers remembered for `shares()`: enough for a few seconds at demo rates.
RECENT_ANSWERS = 2000
NO_ENDPOINT = "no-endpoint"


@dataclass(frozen=True)
class Endpoint:
    pod: str
    url: str
    version: str
    model: str


@dataclass
class VersionStats:
    codes: Counter[str] = field(default_factory=Counter)
    feedback: Counter[str] = field(default_factory=Counter)
    first_ok: float | None = None
    last_ok: float | None = None
    longest_ok_gap: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.codes.values())

    @property
    def failed(self) -> int:
        """Answers that were not 2xx, and requests that got no answer at all."""
        return sum(c for code, c in self.codes.items() if not code.startswith("2"))

    def record(self, code: str, at: float) -> None:
        self.codes[code] += 1
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
        )


def ready_endpoint_pods(discovery: client.DiscoveryV1Api, namespace: str, service: str) -> set[str]:
    """Names of the pods behind the Service's ready endpoints."""
    slices = discovery.list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    ).items
    pods: set[str] = set()
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            # An unset `ready` means ready (EndpointSlice API); terminating ones are not.
            ready = conditions is None or conditions.ready is None or conditions.ready
            target = endpoint.target_ref
            if ready and target is not None and target.kind == "Pod" and target.name:
                pods.add(target.name)
    return pods


class Traffic:
    """Sends `rate` requests per second to `service` in `namespace` until stopped."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        service: str,
        file_sd: Path,
        *,
        dataset: str = "wine",
        rate: float = 20.0,
        feedback_share: float = 0.0,
        drift_shift: float = 0.0,
        concurrency: int = 8,
        seed: int = 0,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.service = service
        self.file_sd = file_sd
        self.rate = rate
        self.feedback_share = feedback_share
        self.concurrency = concurrency
        self._random = random.Random(seed)  # noqa: S311 - load balancing, not security
        load = LoadConfig(
            urls=(), model="", dataset=dataset, drift_shift=drift_shift, seed=seed, batch=1
        )
        self._pool: list[Prepared] = prepare_requests(load, load_dataset(dataset), POOL_SIZE)
        self._endpoints: list[Endpoint] = []
        self._stats: dict[str, VersionStats] = {}
        self._recent: deque[tuple[float, str]] = deque(maxlen=RECENT_ANSWERS)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        discovery = client.DiscoveryV1Api(api)
        self._refresh(discovery)
        for name, target, args in (
            ("endpoints", self._refresh_loop, (discovery,)),
            ("requests", self._request_loop, ()),
        ):
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 5)

    def __enter__(self) -> Traffic:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # What tests and the demo read.

    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)

    def stats(self) -> dict[str, VersionStats]:
        """Model version -> what its answers were, since the start."""
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
            "endpoints": [e.pod for e in self.endpoints()],
            "shares": {v: round(s, 3) for v, s in self.shares().items()},
            "versions": {
                v: {"codes": dict(s.codes), "feedback": dict(s.feedback)}
                for v, s in sorted(self.stats().items())
            },
        }

    # Resolving the Service, as kube-proxy would.

    def _refresh_loop(self, discovery: client.DiscoveryV1Api) -> None:
        while not self._stopping.wait(REFRESH_SECONDS):
            try:
                self._refresh(discovery)
            except Exception as error:  # the API server restarting; keep the last list
                log.warning("resolving %s/%s: %s", self.namespace, self.service, error)

    def _refresh(self, discovery: client.DiscoveryV1Api) -> None:
        pods = ready_endpoint_pods(discovery, self.namespace, self.service)
        targets = read_targets(self.file_sd)
        endpoints = []
        for pod in sorted(pods):
            found = targets.get(PodKey(self.namespace, pod))
            # A ready endpoint without a published server is a pod still loading.
            if found is not None:
                address, labels = found
                endpoints.append(
                    Endpoint(
                        pod, f"http://{address}", labels["model_version"], labels["model_name"]
                    )
                )
        self._endpoints = endpoints

    # Sending requests.

    def _request_loop(self) -> None:
        asyncio.run(self._send_all())

    async def _send_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            next_index = 0
            start = time.monotonic()

            async def worker() -> None:
                nonlocal next_index
                while not self._stopping.is_set():
                    i = next_index
                    next_index += 1
                    # Open loop: request i is due at start + i / rate, whatever came before.
                    due = start + i / self.rate
                    while (delay := due - time.monotonic()) > 0:
                        if self._stopping.is_set():
                            return
                        await asyncio.sleep(min(delay, 0.5))
                    await self._send(session, self._pool[i % len(self._pool)])

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def _send(self, session: aiohttp.ClientSession, item: Prepared) -> None:
        endpoints = self._endpoints
        if not endpoints:
            self._record(NO_ENDPOINT, NO_ENDPOINT)
            return
        endpoint = self._random.choice(endpoints)
        url = f"{endpoint.url}/v2/models/{endpoint.model}/infer"
        request_id: str | None = None
        try:
            async with session.post(url, data=item.body, headers=_JSON) as response:
                body = await response.read()
                code = str(response.status)
                if response.status == 200:
                    request_id = json.loads(body).get("id") or response.headers.get("X-Request-Id")
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            code = f"error:{type(error).__name__}"
        self._record(endpoint.version, code)
        if request_id and self._random.random() < self.feedback_share:
            await self._feedback(session, endpoint, request_id, item)

    async def _feedback(
        self, session: aiohttp.ClientSession, endpoint: Endpoint, request_id: str, item: Prepared
    ) -> None:
        url = f"{endpoint.url}/v2/models/{endpoint.model}/feedback"
        body = json.dumps({"id": request_id, "labels": item.labels}).encode()
        try:
            async with session.post(url, data=body, headers=_JSON) as response:
                await response.read()
                code = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            code = f"error:{type(error).__name__}"
        with self._lock:
            self._stats.setdefault(endpoint.version, VersionStats()).feedback[code] += 1

    def _record(self, version: str, code: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._stats.setdefault(version, VersionStats()).record(code, now)
            self._recent.append((now, version))


_JSON = {"Content-Type": "application/json"}


@contextmanager
def running_traffic(
    kubeconfig: Path, namespace: str, service: str, file_sd: Path, **options: Any
) -> Iterator[Traffic]:
    traffic = Traffic(kubeconfig, namespace, service, file_sd, **options)
    traffic.start()
    try:
        yield traffic
    finally:
        traffic.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelrollout.devenv.traffic",
        description="Send traffic to a ModelDeployment's Service through the pod runner.",
    )
    parser.add_argument("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--namespace", "-n", required=True)
    parser.add_argument("--service", required=True, help="the ModelDeployment's name")
    parser.add_argument("--file-sd", type=Path, required=True, help="the pod runner's file")
    parser.add_argument("--dataset", default="wine")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--feedback-share", type=float, default=0.0)
    parser.add_argument("--drift-shift", type=float, default=0.0, help="standard deviations")
    args = parser.parse_args(argv)
    if args.kubeconfig is None:
        parser.error("--kubeconfig or KUBECONFIG is required")
    stop_on_signals()
    with running_traffic(
        args.kubeconfig, args.namespace, args.service, args.file_sd,
        dataset=args.dataset, rate=args.rate, feedback_share=args.feedback_share,
        drift_shift=args.drift_shift,
    ) as traffic:  # fmt: skip
        wait_for_signal()
        print(json.dumps(traffic.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
