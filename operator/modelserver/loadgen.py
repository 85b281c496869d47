"""`modelrollout loadgen`: realistic traffic for one or more model servers.

Rows are drawn from the same bundled dataset the model was trained on, so
undrifted traffic looks like training data; drift is added on request (numeric
features shifted by a number of standard deviations, unseen categories,
dropped features), and a share of answered requests gets its true label posted
back as feedback. Requests follow an open-loop schedule at the given rate (or
go as fast as the concurrency allows when the rate is 0, for benchmarks), and
the summary gives status codes and latency percentiles.

With a rate, latency is measured from each request's scheduled send time, not
from when it was actually sent: a stalled server (or too little concurrency)
delays the requests queued behind it, and timing from the late send would hide
that wait (coordinated omission). The summary compares the achieved rate with
the target and warns when it falls more than 10% short.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from modelserver.datasets import Dataset, load_dataset
from modelserver.settings import VERSION_HEADER

PROTOCOLS = ("v2", "v1", "v2-tensor")
# Achieved rate below this share of the target is reported as a shortfall.
RATE_TOLERANCE = 0.9
# Distinct request bodies prepared up front and reused round-robin: building
# JSON in the hot loop would make the load tool, not the server, the bottleneck.
POOL_SIZE = 2000


@dataclass(frozen=True)
class LoadConfig:
    urls: tuple[str, ...]
    model: str
    dataset: str = "wine"
    rate: float = 50.0
    duration: float | None = 10.0
    requests: int | None = None
    concurrency: int = 8
    batch: int = 1
    protocol: str = "v2"
    drift_shift: float = 0.0
    drift_features: tuple[str, ...] = ()
    unseen_share: float = 0.0
    drop_share: float = 0.0
    feedback_share: float = 0.0
    seed: int = 0
    timeout: float = 10.0
    progress_interval: float = 5.0


@dataclass
class Summary:
    sent: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    feedback: Counter[str] = field(default_factory=Counter)
    # Answers by the model version that gave them (the X-Model-Version header): what
    # the clients actually received, split by version, e.g. a canary's realised share.
    versions: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    # Requests/s asked for; None when sending as fast as possible.
    target_rate: float | None = None

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    def rate_warning(self) -> str | None:
        """Says so when the achieved rate is more than 10% below the target."""
        target = self.target_rate
        if not target or not self.sent or self.achieved_rate >= RATE_TOLERANCE * target:
            return None
        short = 100 * (1 - self.achieved_rate / target)
        return (
            f"achieved {self.achieved_rate:.1f} req/s, {short:.0f}% below the target "
            f"{target:g} req/s: the server or the load tool cannot keep up (try more "
            "--concurrency); latencies include the wait behind the schedule"
        )

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        return float(np.percentile(self.latencies, q))

    def to_json(self) -> dict[str, Any]:
        def ms(q: float) -> float | None:
            value = self.percentile(q)
            return None if value is None else round(value * 1000, 3)

        return {
            "sent": self.sent,
            "elapsed_seconds": round(self.elapsed, 3),
            "requests_per_second": round(self.achieved_rate, 1),
            "target_requests_per_second": self.target_rate,
            "rate_warning": self.rate_warning(),
            "codes": dict(sorted(self.codes.items())),
            "feedback_codes": dict(sorted(self.feedback.items())),
            "model_versions": dict(sorted(self.versions.items())),
            "latency_ms": {"p50": ms(50), "p90": ms(90), "p99": ms(99), "max": ms(100)},
        }

    def line(self) -> str:
        data = self.to_json()
        lat = data["latency_ms"]
        target = f" (target {self.target_rate:g}/s)" if self.target_rate else ""
        return (
            f"sent={data['sent']} rate={data['requests_per_second']}/s{target} "
            f"codes={data['codes']} versions={data['model_versions']} "
            f"feedback={data['feedback_codes']} "
            f"p50={lat['p50']}ms p99={lat['p99']}ms"
        )


@dataclass(frozen=True)
class Prepared:
    body: bytes
    labels: list[str | float]


def prepare_requests(config: LoadConfig, data: Dataset, count: int) -> list[Prepared]:
    """Request bodies with drift applied, each with the true labels of its rows."""
    rng = np.random.default_rng(config.seed)
    chooser = random.Random(config.seed)  # noqa: S311 - traffic shaping, not security
    names = data.feature_names
    shifted = set(config.drift_features) or {f.name for f in data.features if f.kind == "numeric"}
    unknown = shifted - set(names)
    if unknown:
        raise ValueError(f"--drift-features not in {data.name}: {', '.join(sorted(unknown))}")
    stds = {
        f.name: float(np.std(data.column(f.name).astype(np.float64)))
        for f in data.features
        if f.kind == "numeric"
    }
    pool = []
    for _ in range(count):
        rows = rng.integers(0, len(data.y), size=config.batch)
        columns: dict[str, list[Any]] = {}
        for i, feature in enumerate(data.features):
            values = data.X[rows, i]
            if feature.kind == "numeric":
                column = values.astype(np.float64)
                if config.drift_shift and feature.name in shifted:
                    column = column + config.drift_shift * stds[feature.name]
                columns[feature.name] = [float(v) for v in column]
            else:
                columns[feature.name] = [
                    f"unseen-{feature.name}"
                    if config.unseen_share and chooser.random() < config.unseen_share
                    else str(v)
                    for v in values
                ]
        if config.drop_share and chooser.random() < config.drop_share:
            del columns[chooser.choice(names)]
        pool.append(
            Prepared(_body(config.protocol, data, columns), [_label(data, r) for r in rows])
        )
    return pool


def _label(data: Dataset, row: int) -> str | float:
    """What feedback posts: a class label, or a regressor's numeric target."""
    value = data.y[row]
    return float(value) if data.task == "regression" else str(value)


def _body(protocol: str, data: Dataset, columns: dict[str, list[Any]]) -> bytes:
    if protocol == "v1":
        rows = len(next(iter(columns.values())))
        instances = [{name: col[r] for name, col in columns.items()} for r in range(rows)]
        return json.dumps({"instances": instances}).encode()
    if protocol == "v2-tensor":
        # MLServer's scikit-learn runtime takes one [rows, features] tensor.
        matrix = np.column_stack([columns[n] for n in data.feature_names if n in columns])
        tensor = {
            "name": "input-0",
            "datatype": "FP64",
            "shape": list(matrix.shape),
            "data": matrix.reshape(-1).tolist(),
        }
        return json.dumps({"inputs": [tensor]}).encode()
    kinds = {f.name: f.kind for f in data.features}
    inputs = [
        {
            "name": name,
            "datatype": "FP64" if kinds[name] == "numeric" else "BYTES",
            "shape": [len(values)],
            "data": values,
        }
        for name, values in columns.items()
    ]
    return json.dumps({"inputs": inputs}).encode()


async def run_load(config: LoadConfig, out: TextIO = sys.stderr) -> Summary:
    import aiohttp

    if config.duration is None and config.requests is None:
        raise ValueError("give a duration or a number of requests")
    data = load_dataset(config.dataset)
    pool = prepare_requests(config, data, min(POOL_SIZE, config.requests or POOL_SIZE))
    path = "/v1/models/{}:predict" if config.protocol == "v1" else "/v2/models/{}/infer"
    targets = [u.rstrip("/") + path.format(config.model) for u in config.urls]
    feedback_targets = [f"{u.rstrip('/')}/v2/models/{config.model}/feedback" for u in config.urls]
    summary = Summary(target_rate=config.rate if config.rate > 0 else None)
    chooser = random.Random(config.seed + 1)  # noqa: S311
    next_index = 0
    start = time.perf_counter()
    deadline = None if config.duration is None else start + config.duration
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=config.timeout)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while True:
            i = next_index
            next_index += 1
            if config.requests is not None and i >= config.requests:
                return
            scheduled = None
            if config.rate > 0:
                scheduled = start + i / config.rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if deadline is not None and time.perf_counter() >= deadline:
                return
            item = pool[i % len(pool)]
            target = i % len(targets)
            sent_at = time.perf_counter()
            # From the schedule (or the send, if the timer woke early): see the docstring.
            origin = sent_at if scheduled is None else min(scheduled, sent_at)
            try:
                async with session.post(targets[target], data=item.body, headers=headers) as resp:
                    answer = await resp.read()
                    code = str(resp.status)
                    request_id = resp.headers.get("X-Request-Id")
                    version = resp.headers.get(VERSION_HEADER)
            except (aiohttp.ClientError, TimeoutError) as exc:
                code, answer, request_id = f"error:{type(exc).__name__}", b"", None
                version = None
            if version is not None:
                summary.versions[version] += 1
            summary.latencies.append(time.perf_counter() - origin)
            summary.sent += 1
            summary.codes[code] += 1
            if code == "200" and config.feedback_share and chooser.random() < config.feedback_share:
                if config.protocol != "v1":
                    request_id = json.loads(answer).get("id", request_id)
                await _feedback(session, feedback_targets[target], request_id, item, summary)

    async def progress() -> None:
        while True:
            await asyncio.sleep(config.progress_interval)
            summary.elapsed = time.perf_counter() - start
            print(f"[{summary.elapsed:6.1f}s] {summary.line()}", file=out, flush=True)

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        reporter = asyncio.create_task(progress())
        await asyncio.gather(*(worker(session) for _ in range(config.concurrency)))
        reporter.cancel()
    summary.elapsed = time.perf_counter() - start
    warning = summary.rate_warning()
    if warning:
        print(f"warning: {warning}", file=out, flush=True)
    return summary


async def _feedback(
    session: Any, url: str, request_id: str | None, item: Prepared, summary: Summary
) -> None:
    import aiohttp

    body = json.dumps({"id": request_id, "labels": item.labels}).encode()
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
            await r.read()
            summary.feedback[str(r.status)] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        summary.feedback[f"error:{type(exc).__name__}"] += 1


def run(config: LoadConfig, out: TextIO = sys.stderr) -> Summary:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_load(config, out))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_load(config, out))
