"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), on its own port.

Triton's and KServe's gRPC clients, and load tools such as ghz, speak this.
The servicer only translates: a ModelInferRequest becomes the same payload a
REST JSON body parses to (typed `contents`, or `raw_input_contents` through the
binary tensor codec), and then takes the one request path REST takes
(`modelserver.inference`): the same validation and messages, predictions,
drift and feedback recording, and the same request counter and latency
histogram (endpoint "infer", the HTTP-equivalent status), so a rollout's
analysis sees gRPC traffic too. A refused request ends with INVALID_ARGUMENT
(or NOT_FOUND for an unknown model or version) and REST's message; INTERNAL
is kept for the server's own faults.

Outputs come back the way the inputs came: raw when the request used
`raw_input_contents` (as Triton's client does), typed `contents` otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc import aio

from modelserver.grpc import grpc_predict_v2_pb2 as pb
from modelserver.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from modelserver.inference import NOT_LOADED, InferencePath
from modelserver.inputs import InputError
from modelserver.service import ModelService, OutputTensor
from modelserver.tensors import decode_bytes_elements, decode_raw, encode_raw

log = logging.getLogger("modelserver.grpc")

# Which InferTensorContents field carries each datatype.
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_ALL_FIELDS = tuple(dict.fromkeys(CONTENTS_FIELD.values()))


def status_code(status: int) -> grpc.StatusCode:
    """The gRPC code for one of the request path's HTTP statuses."""
    if status == 404:
        return grpc.StatusCode.NOT_FOUND
    if status == 503:
        return grpc.StatusCode.UNAVAILABLE
    if 400 <= status < 500:
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


class GrpcApi(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, path: InferencePath) -> None:
        self.path = path

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(
            ready=self.path.service is not None and not self.path.draining
        )

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="modelserver", version="1")

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ModelReadyResponse:
        service = self.path.service
        if service is None:
            return pb.ModelReadyResponse(ready=False)
        await _check_model(service, request.name, request.version, context)
        return pb.ModelReadyResponse(ready=not self.path.draining)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ModelMetadataResponse:
        service = self.path.service
        if service is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, NOT_LOADED)
        assert service is not None
        await _check_model(service, request.name, request.version, context)
        meta = service.metadata()

        def tensors(items: list[dict[str, Any]]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
            return [
                pb.ModelMetadataResponse.TensorMetadata(
                    name=t["name"], datatype=t["datatype"], shape=t["shape"]
                )
                for t in items
            ]

        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=tensors(meta["inputs"]),
            outputs=tensors(meta["outputs"]),
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.ModelInferResponse:
        supplied = dict(context.invocation_metadata() or ()).get("x-request-id")

        async def work(service: ModelService, request_id: str) -> pb.ModelInferResponse:
            payload = request_payload(request)
            decoded = service.decode_v2(payload, request_id)
            outputs = service.v2_outputs(decoded, await self.path.predict(decoded))
            return infer_response(service, decoded.request_id, outputs, raw=bool(
                request.raw_input_contents
            ))  # fmt: skip

        answer = await self.path.answer(
            "infer",
            request.model_name,
            request.model_version or None,
            supplied if isinstance(supplied, str) else None,
            work,
        )
        if answer.value is None:
            await context.abort(status_code(answer.status), answer.error)
        assert answer.value is not None
        return answer.value


async def _check_model(
    service: ModelService, name: str, version: str, context: aio.ServicerContext[Any, Any]
) -> None:
    try:
        service.check_model(name, version or None)
    except InputError as exc:
        await context.abort(status_code(exc.status), str(exc))


def request_payload(request: pb.ModelInferRequest) -> dict[str, Any]:
    """The request as the JSON payload REST would have parsed, for the one decoder."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InputError(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
            "send one per input, in order",
            kind="bad_binary",
        )
    inputs = []
    for position, tensor in enumerate(request.inputs):
        label = repr(tensor.name) if tensor.name else f"inputs[{position}]"
        shape = list(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise InputError(
                    f"input {label} sets contents while raw_input_contents is used; send one",
                    kind="bad_binary",
                )
            data = decode_raw(label, tensor.datatype, shape, raw[position])
        else:
            data = _typed_contents(label, tensor)
        inputs.append(
            {"name": tensor.name, "datatype": tensor.datatype, "shape": shape, "data": data}
        )
    payload: dict[str, Any] = {"inputs": inputs}
    if request.id:
        payload["id"] = request.id
    if request.outputs:
        payload["outputs"] = [{"name": output.name} for output in request.outputs]
    return payload


def _typed_contents(label: str, tensor: pb.ModelInferRequest.InferInputTensor) -> list[Any]:
    contents = tensor.contents
    field = CONTENTS_FIELD.get(tensor.datatype)
    if field is None:
        # An unknown datatype: take whatever was sent, so the decoder refuses the
        # datatype with the message REST gives.
        field = next((f for f in _ALL_FIELDS if len(getattr(contents, f))), "fp64_contents")
    if field == "bytes_contents":
        return decode_bytes_elements(label, contents.bytes_contents)
    return list(getattr(contents, field))


def infer_response(
    service: ModelService, request_id: str, outputs: list[OutputTensor], raw: bool
) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(
        model_name=service.settings.model_name,
        model_version=service.settings.model_version,
        id=request_id,
    )
    for output in outputs:
        tensor = response.outputs.add(
            name=output.name, datatype=output.datatype, shape=output.shape
        )
        if raw:
            response.raw_output_contents.append(encode_raw(output.values, output.datatype))
            continue
        values = output.values.reshape(-1).tolist()
        field = CONTENTS_FIELD[output.datatype]
        if field == "bytes_contents":
            values = [str(v).encode("utf-8") for v in values]
        getattr(tensor.contents, field).extend(values)
    return response


async def start_server(path: InferencePath, host: str, port: int, max_bytes: int) -> aio.Server:
    """A started gRPC server on `host:port`; raises OSError when it cannot listen."""
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            # One listener per port: a second server must fail to bind, not share it.
            ("grpc.so_reuseport", 0),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(GrpcApi(path), server)  # type: ignore[no-untyped-call]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot bind {address}: {exc}") from None
    if bound == 0:
        raise OSError(f"cannot bind {address}")
    await server.start()
    return server
