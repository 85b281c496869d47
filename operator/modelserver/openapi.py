"""The server's OpenAPI 3 document, written by hand for the aiohttp routes.

It is served at /openapi.json so clients and contract tests (schemathesis)
see exactly what the server accepts and returns, including the JSON error
body of every 4xx. Examples are built from the loaded model's real feature
names, so the document shows a request that works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelserver.inputs import REQUEST_ID_PATTERN
from modelserver.records import REVIEW_LIMIT
from modelserver.shadow import SHADOW_HEADER
from modelserver.tensors import HEADER_LENGTH

if TYPE_CHECKING:
    from modelserver.service import ModelService

JSON = "application/json"
BINARY = "application/octet-stream"
# The binary tensor data extension's body: a JSON header, then the raw tensors.
BINARY_BODY = {"type": "string", "format": "binary"}
REQUEST_ID = {
    "type": "string",
    "pattern": f"^{REQUEST_ID_PATTERN}$",
    "description": "Visible ASCII only: no spaces or control characters.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(ok: str, *errors: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed request; the error names the problem.",
        404: "Unknown model, version or request id.",
        409: "Already labelled, or the server has no inference-records store.",
        413: "Body or batch larger than the server accepts.",
        422: "The model rejected otherwise valid input.",
        500: "Injected fault (MODELSERVER_FAULT_ERROR_RATE) or a server bug.",
        503: "The model is not loaded yet, or the inference-records store is unreachable.",
    }
    out: dict[str, Any] = {"200": {"description": "OK", "content": {JSON: {"schema": _ref(ok)}}}}
    for code in errors:
        out[str(code)] = {
            "description": reasons[code],
            "content": {JSON: {"schema": _ref("Error")}},
        }
    return out


def openapi_document(service: ModelService) -> dict[str, Any]:
    name = service.settings.model_name
    version = service.settings.model_version
    example_inputs = [
        {
            "name": f.name,
            "datatype": "FP64" if f.kind == "numeric" else "BYTES",
            "shape": [1],
            "data": [f.edges[len(f.edges) // 2] if f.edges else (f.categories or ("x",))[0]],
        }
        for f in service.profile.features
    ]
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": name,
    }
    version_param = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": version,
    }
    request_id_header = {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "schema": REQUEST_ID,
        "description": "The request's id (else the body's `id`, else one the server assigns).",
    }
    shadow_header = {
        "name": SHADOW_HEADER,
        "in": "header",
        "required": False,
        "schema": {"type": "string", "enum": ["1"]},
        "description": (
            "Set by a champion on the copy of a request it mirrors (shadow traffic): "
            "served as usual, but counted in modelserver_shadow_served_total instead of "
            "modelserver_requests_total, and never mirrored on."
        ),
    }
    model_errors = (400, 404, 413, 422, 500, 503)
    binary_header = {
        "name": HEADER_LENGTH,
        "in": "header",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
        "description": (
            "Binary tensor data extension: the body's first N bytes are the JSON request; "
            "inputs with `parameters.binary_data_size` follow in order as raw tensors "
            "(row-major, little-endian; BYTES elements length-prefixed). Outputs come back "
            "in binary when the request sets `parameters.binary_data_output` or an "
            "output's `parameters.binary_data`, with this header on the response."
        ),
    }

    def op(summary: str, ok: str, params: list[Any], body: str | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": [*params, request_id_header] if body else params,
            "responses": _responses(ok, *(model_errors if body else (404, 503))),
        }
        if body:
            operation["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": _ref(body)}},
            }
        return operation

    def inference(summary: str, params: list[Any]) -> dict[str, Any]:
        """An infer operation: JSON, or the binary tensor data extension (both ways)."""
        operation = op(
            summary, "InferResponse", [*params, binary_header, shadow_header], "InferRequest"
        )
        operation["requestBody"]["content"][BINARY] = {"schema": BINARY_BODY}
        operation["responses"]["200"]["content"][BINARY] = {"schema": BINARY_BODY}
        return operation

    feedback = op(
        "Ground truth for an earlier request",
        "FeedbackResponse",
        [name_param],
        "FeedbackRequest",
    )
    feedback["responses"].update(_responses("FeedbackResponse", 409))
    limit_param = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": REVIEW_LIMIT},
        "description": f"Requests to return (default 20, at most {REVIEW_LIMIT}).",
    }
    infer = inference("Open Inference Protocol inference", [name_param])
    infer["requestBody"]["content"][JSON]["example"] = {"inputs": example_inputs}
    return {
        "openapi": "3.0.3",
        "info": {"title": f"modelserver: {name} v{version}", "version": "1"},
        "paths": {
            "/v2/health/live": {"get": op("Liveness", "Status", [])},
            "/v2/health/ready": {"get": op("Readiness", "Status", [])},
            "/v2": {"get": op("Server metadata", "Object", [])},
            "/v2/models/{name}": {"get": op("Model metadata", "Object", [name_param])},
            "/v2/models/{name}/versions/{version}": {
                "get": op("Model metadata", "Object", [name_param, version_param])
            },
            "/v2/models/{name}/ready": {"get": op("Model readiness", "Object", [name_param])},
            "/v2/models/{name}/versions/{version}/ready": {
                "get": op("Model version readiness", "Object", [name_param, version_param])
            },
            "/v2/models/{name}/infer": {"post": infer},
            "/v2/models/{name}/versions/{version}/infer": {
                "post": inference("Inference", [name_param, version_param])
            },
            "/v2/models/{name}/feedback": {"post": feedback},
            "/v2/models/{name}/review": {
                "get": {
                    "summary": "Recent unlabelled requests at random, for people to label",
                    "parameters": [name_param, limit_param],
                    "responses": _responses("ReviewSample", 400, 404, 409, 503),
                }
            },
            "/v1/models/{name}": {"get": op("KServe V1 model status", "Object", [name_param])},
            "/v1/models/{name}:predict": {
                "post": op(
                    "KServe V1 prediction", "V1Response", [name_param, shadow_header], "V1Request"
                )
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3 document.",
                            "content": {JSON: {"schema": _ref("Object")}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": _schemas(service.regression)},
    }


def _schemas(regression: bool) -> dict[str, Any]:
    tensor: dict[str, Any] = {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "data": {"type": "array", "items": {}},
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Status": {"type": "object"},
        "Object": {"type": "object"},
        "Tensor": tensor,
        # An output in binary has `parameters.binary_data_size` instead of `data`.
        "OutputTensor": {
            "type": "object",
            "required": ["name", "datatype", "shape"],
            "properties": {
                **tensor["properties"],
                "parameters": {
                    "type": "object",
                    "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                },
            },
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": REQUEST_ID,
                "inputs": {"type": "array", "items": _ref("Tensor")},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "parameters": {
                                "type": "object",
                                "properties": {"binary_data": {"type": "boolean"}},
                            },
                        },
                    },
                },
                "parameters": {
                    "type": "object",
                    "properties": {"binary_data_output": {"type": "boolean"}},
                },
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "id", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": _ref("OutputTensor")},
            },
        },
        "V1Request": {
            "type": "object",
            "required": ["instances"],
            "properties": {"instances": {"type": "array", "items": {}}},
        },
        "V1Response": {
            "type": "object",
            "required": ["predictions"],
            "properties": {"predictions": {"type": "array", "items": {}}},
        },
        "FeedbackRequest": {
            "type": "object",
            "required": ["id", "labels"],
            "properties": {
                "id": REQUEST_ID,
                "source": {
                    "type": "string",
                    "enum": ["client", "human"],
                    "description": "Who labelled: a downstream signal (default) or a person.",
                },
                "labels": {
                    "type": "array",
                    # A regressor is labelled with numbers, a classifier with classes.
                    "items": {"type": "number"}
                    if regression
                    else {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                },
            },
        },
        "ReviewSample": {
            "type": "object",
            "required": ["model_name", "features", "requests"],
            "properties": {
                "model_name": {"type": "string"},
                "features": {"type": "array", "items": {"type": "string"}},
                "classes": {"type": "array", "items": {"type": "string"}},
                "requests": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "model_version", "served_at", "rows"],
                        "properties": {
                            "id": {"type": "string"},
                            "model_version": {"type": "string"},
                            "served_at": {"type": "string"},
                            "rows": {"type": "array", "items": _ref("Object")},
                        },
                    },
                },
            },
        },
        "FeedbackResponse": {
            "type": "object",
            "required": ["id", "scored", "mean_absolute_error"],
            "properties": {
                "id": {"type": "string"},
                "scored": {"type": "integer"},
                "mean_absolute_error": {"type": "number"},
            },
        }
        if regression
        else {
            "type": "object",
            "required": ["id", "correct", "incorrect"],
            "properties": {
                "id": {"type": "string"},
                "correct": {"type": "integer"},
                "incorrect": {"type": "integer"},
            },
        },
    }
