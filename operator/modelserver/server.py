"""Process lifecycle of `modelrollout serve`: listen, load, serve, evaluate drift, stop.

The port opens first, so the liveness probe passes while the model loads
(in a thread, so health checks stay responsive); readiness turns true only once
the artifact is downloaded (http/https MODEL_URI), verified and loaded. A
start-up failure (failed download, bad digest, refused pickle, missing profile)
is logged with its reason and exits with status 1, which Kubernetes shows as a
crash loop with that message in the pod log; the message also goes to the
container's termination message file, so that it appears in the pod's
`lastState.terminated.message`, where the operator reads why a revision's pods
never became ready.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, disable_created_metrics

from modelserver import logs
from modelserver.artifact import ArtifactError
from modelserver.fetch import display_uri
from modelserver.grpc_api import start_server as start_grpc
from modelserver.http import HttpApi
from modelserver.profile import ProfileError
from modelserver.service import ModelService, load_service
from modelserver.settings import Settings

log = logging.getLogger("modelserver")
T = TypeVar("T")

# Pending connections the kernel queues while the event loop is busy predicting.
BACKLOG = 1024
# Kubernetes keeps this much of a container's termination message.
TERMINATION_MESSAGE_BYTES = 4096
# Seconds a stop waits for an interrupted download to clean up its partial file.
STOP_WAIT_SECONDS = 5.0
# Seconds the records writer has after SIGTERM to write what is still queued.
RECORDS_STOP_SECONDS = 5.0


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; the exit code for the process."""
    logs.configure(settings.log_level)
    # `*_created` series double the scrape size and no rollout query uses them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        import uvloop  # faster event loop where installed (it is, on Linux)
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve(settings))


async def serve(settings: Settings, registry: CollectorRegistry | None = None) -> int:
    registry = CollectorRegistry() if registry is None else registry
    api = HttpApi(settings, registry)
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=BACKLOG)
    try:
        await site.start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc)
        await runner.cleanup()
        return 1
    grpc_server = None
    if settings.grpc_port:
        try:
            grpc_server = await start_grpc(
                api.path, settings.host, settings.grpc_port, settings.max_body_bytes
            )
        except OSError as exc:
            log.error("cannot listen for gRPC on %s:%s: %s", settings.host, settings.grpc_port, exc)
            await runner.cleanup()
            return 1
    log.info(
        "listening",
        extra={
            "host": settings.host,
            "port": settings.port,
            "grpc_port": settings.grpc_port or None,
            "model": settings.model_name,
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        service = await _load(settings, registry, stop)
        if service is None:
            return 0 if stop.is_set() else 1
        if service.records is not None:
            service.records.start()
        api.attach(service)
        log.info(
            "ready",
            extra={
                "model_version": settings.model_version,
                "sha256": service.sha256,
                "features": len(service.profile.features),
            },
        )
        evaluator = asyncio.create_task(_evaluate_forever(service, settings.drift_interval_seconds))
        if api.mirror is not None:
            api.mirror.start()
        await stop.wait()
        await _drain(api, settings.shutdown_drain_seconds)
        evaluator.cancel()
        if api.mirror is not None:
            await api.mirror.close()
        if service.records is not None:
            # What was answered is written before the process goes (bounded).
            await asyncio.to_thread(service.records.stop, RECORDS_STOP_SECONDS)
        log.info("stopping")
        return 0
    finally:
        if grpc_server is not None:
            await grpc_server.stop(grace=None)
        await runner.cleanup()


async def _drain(api: HttpApi, seconds: float) -> None:
    """Keeps answering for `seconds` after SIGTERM while readiness says 503: the pod
    is still an endpoint until the endpoints controller and every kube-proxy have
    seen it go, and a server that closed at once would refuse those requests."""
    if seconds <= 0:
        return
    api.path.draining = True
    log.info("draining", extra={"seconds": seconds})
    await asyncio.sleep(seconds)


async def _load(
    settings: Settings, registry: CollectorRegistry, stop: asyncio.Event
) -> ModelService | None:
    cancel = threading.Event()
    loading = _in_daemon_thread(lambda: load_service(settings, registry, cancel))
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not loading.done():
        # Stopped while loading: a download ends at its next chunk or backoff and removes
        # its partial file; one stalled on the network is not waited for beyond a bound.
        cancel.set()
        loading.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.wait({loading}, timeout=STOP_WAIT_SECONDS)
        return None
    uri = display_uri(settings.model_uri)  # never a presigned URL's query string
    try:
        service = loading.result()
    except (ArtifactError, ProfileError) as exc:
        message = f"cannot serve {uri}: {exc}"
        log.error(message)
        write_termination_message(settings.termination_log, message)
        return None
    except Exception as exc:
        log.exception("cannot load %s: %s", uri, type(exc).__name__)
        write_termination_message(
            settings.termination_log, f"cannot load {uri}: {type(exc).__name__} (see the log)"
        )
        return None
    # scikit-learn keeps configuration per thread; predictions run on this one.
    service.model.prepare_thread()
    service.evaluate()
    return service


def _in_daemon_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    """`work()` on a daemon thread: unlike asyncio.to_thread's executor, which the
    interpreter joins at exit, a load stuck on a stalled download cannot hold up a
    SIGTERM past the pod's grace period."""
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # given up on
            try:
                done.set_result(work())
            except BaseException as exc:
                done.set_exception(exc)

    threading.Thread(target=run, name="modelserver-load", daemon=True).start()
    return asyncio.wrap_future(done)


def write_termination_message(path: str, message: str) -> None:
    """`message` into the termination message file, which Kubernetes shows (its first
    4096 bytes) as the container's lastState.terminated.message.

    The kubelet creates that file in every container, so it is only ever opened,
    never created: where it does not exist or cannot be written (a laptop, tests),
    nothing happens.
    """
    if not path:
        return
    data = message.encode("utf-8")[:TERMINATION_MESSAGE_BYTES]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as sink:
            sink.write(data.decode("utf-8", "ignore").encode("utf-8"))
    except OSError:
        log.debug("cannot write the termination message to %s", path)


async def _evaluate_forever(service: ModelService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            service.evaluate()
        except Exception:
            # Keep serving: a failed evaluation leaves the last gauges in place.
            log.exception("drift evaluation failed")
