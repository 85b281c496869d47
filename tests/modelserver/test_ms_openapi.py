"""The served OpenAPI document describes every route the HTTP layer answers."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelserver.http import HttpApi
from modelserver.openapi import openapi_document
from modelserver.service import load_service
from modelserver.settings import Settings

pytestmark = pytest.mark.unit


def test_every_route_is_in_the_document(models: dict[str, dict[str, Any]]) -> None:
    artifact = models["wine-improved"]
    settings = Settings(model_name="wine", model_uri=artifact["uri"])
    api = HttpApi(settings, CollectorRegistry())
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in api.app().router.routes()
        if route.resource is not None and route.method != "HEAD"  # aiohttp adds HEAD to GETs
    }
    document = openapi_document(load_service(settings, CollectorRegistry()))
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    assert ("get", "/v2/models/{name}/versions/{version}/ready") in documented
    assert ("get", "/metrics") in documented
    assert ("get", "/openapi.json") in documented
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    assert "X-Request-Id" in [p["name"] for p in infer["parameters"]]
    # The binary tensor data extension, both ways.
    assert "Inference-Header-Content-Length" in [p["name"] for p in infer["parameters"]]
    assert "application/octet-stream" in infer["requestBody"]["content"]
    assert "application/octet-stream" in infer["responses"]["200"]["content"]
    # A champion's shadow copies say so, on both mirrored routes.
    predict = document["paths"]["/v1/models/{name}:predict"]["post"]
    for operation in (infer, predict):
        assert "X-Modelrollout-Shadow" in [p["name"] for p in operation["parameters"]]
