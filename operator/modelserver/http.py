"""The HTTP layer: routes, body limits and status codes around `ModelService`.

Why aiohttp rather than FastAPI (which MLServer and KServe use): the server
must at least match MLServer's throughput and start fast beside a dozen
siblings on two cores. aiohttp is already installed (kopf depends on it), has
a C HTTP parser, imports in a fraction of FastAPI + pydantic + uvicorn, and
adds no per-request validation layer: the request schema is checked once, by
`modelserver.inputs`, with error messages written for people. The OpenAPI
document is therefore written out by hand (`modelserver.openapi`).

No handler lets an exception escape as an HTML 500: input problems are 4xx
with `{"error": ...}`, and anything unexpected is logged and answered with a
JSON 500 that the error-rate analysis will, rightly, count.

Logs carry nothing the client chose: a refusal is logged with its fixed
`kind`, its status and counts, and the request id only when the server
assigned it; the error message, which may quote unknown feature names or ids,
goes back to the client alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy.typing as npt
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from modelserver.inference import INTERNAL_ERROR, InferencePath
from modelserver.inputs import Decoded, InputError
from modelserver.openapi import openapi_document
from modelserver.records import REVIEW_LIMIT
from modelserver.service import ModelService
from modelserver.settings import VERSION_HEADER, Settings
from modelserver.shadow import (
    FORWARDED_HEADERS,
    Route,
    ShadowCopy,
    ShadowMirror,
    is_copy,
)
from modelserver.tensors import (
    HEADER_LENGTH,
    attach_binary_inputs,
    binary_outputs,
    parse_json,
    split_body,
)

log = logging.getLogger("modelserver.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A response's JSON, and the binary tensor data that follows it (usually none).
Reply = tuple[dict[str, Any], bytes]
DEFAULT_REVIEW_LIMIT = 20
# The endpoints a champion mirrors, and a challenger serves copies on.
MIRRORED = frozenset({"infer", "predict"})


def _json(
    status: int,
    body: dict[str, Any],
    request_id: str | None = None,
    served: dict[str, str] | None = None,
) -> web.Response:
    headers = {**({"X-Request-Id": request_id} if request_id else {}), **(served or {})}
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=headers or None,
    )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unrouted paths, wrong methods and stray exceptions still answer JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json(exc.status, {"error": f"{exc.reason}: {request.method} {request.path}"})
    except Exception:
        # The route's pattern, not the path: the path holds client-chosen names.
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        log.exception("unhandled error", extra={"route": route})
        return _json(500, {"error": INTERNAL_ERROR})


class HttpApi:
    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.path = InferencePath(settings)
        # Set once the model is loaded, when MODELSERVER_SHADOW_URL names a challenger.
        self.mirror: ShadowMirror | None = None
        self._openapi: bytes | None = None

    @property
    def service(self) -> ModelService | None:
        return self.path.service

    def attach(self, service: ModelService) -> None:
        """The model is loaded: start answering inference and report ready."""
        self._openapi = json.dumps(openapi_document(service)).encode()
        # Always: the operator's shadow configuration may name the challenger's address.
        self.mirror = ShadowMirror(self.settings, service)
        self.path.attach(service)

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.max_body_bytes, middlewares=[json_errors]
        )
        get, post = web.get, web.post
        app.add_routes(
            [
                get("/v2/health/live", self.live),
                get("/v2/health/ready", self.ready),
                get("/v2", self.server_metadata),
                get("/v2/models/{name}", self.model_metadata),
                get("/v2/models/{name}/versions/{version}", self.model_metadata),
                get("/v2/models/{name}/ready", self.model_ready),
                get("/v2/models/{name}/versions/{version}/ready", self.model_ready),
                post("/v2/models/{name}/infer", self.infer),
                post("/v2/models/{name}/versions/{version}/infer", self.infer),
                post("/v2/models/{name}/feedback", self.feedback),
                get("/v2/models/{name}/review", self.review),
                get("/v1/models/{name:[^/:]+}", self.v1_model),
                post("/v1/models/{name:[^/:]+}:predict", self.predict),
                get("/metrics", self.metrics),
                get("/openapi.json", self.openapi),
            ]
        )
        return app

    # -- health and metadata -----------------------------------------------------------------

    async def live(self, request: web.Request) -> web.Response:
        return _json(200, {"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        if self.service is None:
            return _json(503, {"ready": False, "error": "model not loaded yet"})
        if self.path.draining:
            return _json(503, {"ready": False, "error": "shutting down"})
        return _json(200, {"ready": True})

    async def server_metadata(self, request: web.Request) -> web.Response:
        return _json(200, {"name": "modelserver", "version": "1", "extensions": ["feedback"]})

    async def model_metadata(self, request: web.Request) -> web.Response:
        service, error = self._model(request)
        if service is None:
            return error
        return _json(200, service.metadata())

    async def model_ready(self, request: web.Request) -> web.Response:
        service, error = self._model(request)
        if service is None:
            return error
        return _json(200, {"name": service.settings.model_name, "ready": True})

    async def v1_model(self, request: web.Request) -> web.Response:
        return await self.model_ready(request)

    def _model(self, request: web.Request) -> tuple[ModelService | None, web.Response]:
        service = self.service
        if service is None:
            return None, _json(503, {"error": "model not loaded yet"})
        try:
            service.check_model(request.match_info["name"], request.match_info.get("version"))
        except InputError as exc:
            return None, _json(exc.status, {"error": str(exc)})
        return service, _json(200, {})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            return _json(503, {"error": "model not loaded yet"})
        return web.Response(body=self._openapi, content_type="application/json")

    # -- inference and feedback --------------------------------------------------------------

    async def infer(self, request: web.Request) -> web.Response:
        return await self._serve(request, "infer", self._infer_v2)

    async def predict(self, request: web.Request) -> web.Response:
        return await self._serve(request, "predict", self._predict_v1)

    async def feedback(self, request: web.Request) -> web.Response:
        return await self._serve(request, "feedback", self._feedback)

    async def review(self, request: web.Request) -> web.Response:
        return await self._serve(request, "review", self._review)

    async def _serve(
        self,
        request: web.Request,
        endpoint: str,
        work: Callable[[web.Request, ModelService, str], Awaitable[Reply]],
    ) -> web.Response:
        answer = await self.path.answer(
            endpoint,
            request.match_info["name"],
            request.match_info.get("version"),
            request.headers.get("X-Request-Id"),
            lambda service, request_id: work(request, service, request_id),
            copy=endpoint in MIRRORED and is_copy(request.headers),
        )
        service = self.service
        served = served_by(request, service) if service is not None else None
        if answer.value is None:
            return _json(answer.status, {"error": answer.error}, answer.request_id or None, served)
        body, binary = answer.value
        # A 200 body's id was checked by the decoder or the feedback parser.
        answered_id = body.get("id", answer.request_id)
        if not binary:
            return _json(200, body, answered_id, served)
        header = json.dumps(body, separators=(",", ":")).encode()
        return web.Response(
            status=200,
            body=header + binary,
            content_type="application/octet-stream",
            headers={
                HEADER_LENGTH: str(len(header)),
                "X-Request-Id": answered_id,
                **(served or {}),
            },
        )

    async def _infer_v2(
        self, request: web.Request, service: ModelService, request_id: str
    ) -> Reply:
        raw = await _read_body(request, self.settings.max_body_bytes)
        header_length = request.headers.get(HEADER_LENGTH)
        if header_length is None:
            payload = parse_json(raw)
        else:
            payload, binary = split_body(raw, header_length)
            attach_binary_inputs(payload, binary)
        decoded = service.decode_v2(payload, request_id)
        decoded.copy = is_copy(request.headers)
        result = await self.path.predict(decoded)
        outputs = service.v2_outputs(decoded, result)
        reply = service.v2_response(decoded, outputs, binary_outputs(payload, decoded.outputs))
        if "predict" in decoded.outputs:
            self._mirror(request, "v2", raw, decoded, result.labels)
        return reply

    async def _predict_v1(
        self, request: web.Request, service: ModelService, request_id: str
    ) -> Reply:
        raw = await _read_body(request, self.settings.max_body_bytes)
        decoded = service.decode_v1(parse_json(raw), request_id)
        decoded.copy = is_copy(request.headers)
        result = await self.path.predict(decoded)
        self._mirror(request, "v1", raw, decoded, result.labels)
        return service.v1_response(result), b""

    def _mirror(
        self,
        request: web.Request,
        route: Route,
        body: bytes,
        decoded: Decoded,
        predicted: npt.NDArray[Any],
    ) -> None:
        """An answered request goes to the challenger too when the shadow sample takes it;
        a copy never does (a challenger that mirrored would echo copies back and forth)."""
        mirror = self.mirror
        if mirror is None or decoded.copy or not mirror.wanted(decoded.request_id):
            return
        headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
        mirror.offer(ShadowCopy(route, body, headers, decoded.request_id, predicted))

    async def _feedback(
        self, request: web.Request, service: ModelService, request_id: str
    ) -> Reply:
        payload = parse_json(await _read_body(request, self.settings.max_body_bytes))
        if service.records is None:
            return service.score_feedback(payload), b""
        # The records store is a network call: off the event loop.
        return await asyncio.to_thread(service.score_feedback, payload), b""

    async def _review(self, request: web.Request, service: ModelService, request_id: str) -> Reply:
        limit = review_limit(request.query.get("limit"))
        return await asyncio.to_thread(service.review_sample, limit), b""


def review_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_REVIEW_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= REVIEW_LIMIT:
        raise InputError(
            f"'limit' must be a whole number from 1 to {REVIEW_LIMIT}", kind="bad_limit"
        )
    return limit


def served_by(request: web.Request, service: ModelService) -> dict[str, str]:
    """Which server answered: its model version, and the address the request
    reached it on (behind a Service, the pod's own IP and port after kube-proxy's
    DNAT). Labelled feedback must reach that same server, the only one that
    remembers the prediction, and a client of a Service has no other way to know
    which replica (or which revision, for an answer without a body) it got."""
    headers = {VERSION_HEADER: service.settings.model_version}
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = sockname[0], sockname[1]
        headers["X-Served-By"] = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return headers


async def _read_body(request: web.Request, limit: int) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InputError(
            f"request body exceeds {limit} bytes (MODELSERVER_MAX_BODY_BYTES)",
            status=413,
            kind="body_too_large",
        ) from None
