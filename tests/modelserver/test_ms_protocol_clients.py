"""The server as the Open Inference Protocol's own clients see it: NVIDIA's tritonclient
(REST with its default binary tensors, REST with JSON, gRPC), a KServe V2 REST request
and plain gRPC stubs, against a real server process on 127.0.0.1."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.http as triton_http
from ms_helpers import Server, http, label, metric_samples, running_server, v2_body

from modelserver.grpc import grpc_predict_v2_pb2 as pb
from modelserver.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from support.waiting import wait_for

pytestmark = pytest.mark.integration
INFER = "/v2/models/wine/infer"


@pytest.fixture(scope="module")
def server(
    models: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    # Drift gauges refresh on the evaluation timer: often, so a test sees its rows soon.
    env = {"MODELSERVER_DRIFT_INTERVAL_SECONDS": "0.1"}
    with running_server(models["wine-improved"], tmp_path_factory.mktemp("clients"), **env) as s:
        yield s


@pytest.fixture(scope="module")
def penguin_server(
    models: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    artifact = models["penguins-improved"]
    with running_server(artifact, tmp_path_factory.mktemp("penguins"), name="penguins") as s:
        yield s


@pytest.fixture()
def stub(server: Server) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


def requests_counted(server: Server, code: str) -> float:
    samples = metric_samples(server.metrics(), "modelserver_requests_total")
    return label(samples, endpoint="infer", code=code) or 0.0


def drift_samples(server: Server) -> float:
    samples = metric_samples(server.metrics(), "modelserver_drift_window_samples")
    return label(samples, model_name="wine") or 0.0


def rows(row: dict[str, float], count: int) -> dict[str, np.ndarray[Any, Any]]:
    return {name: np.full(count, value, dtype=np.float64) for name, value in row.items()}


def triton_inputs(module: Any, columns: dict[str, np.ndarray[Any, Any]], **kw: Any) -> list[Any]:
    inputs = []
    for name, values in columns.items():
        datatype = "BYTES" if values.dtype == object else "FP64"
        tensor = module.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(values, **kw)
        inputs.append(tensor)
    return inputs


# -- REST: tritonclient's defaults, JSON, KServe ----------------------------------------


def test_tritonclient_http_with_its_default_binary_tensors(
    server: Server, wine_row: dict[str, float]
) -> None:
    client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("wine")
    assert client.get_model_metadata("wine")["inputs"][0]["name"] == "alcohol"
    before_ok, before_drift = requests_counted(server, "200"), drift_samples(server)
    # No outputs named: tritonclient asks for every output in binary.
    result = client.infer("wine", triton_inputs(triton_http, rows(wine_row, 100)))
    labels = result.as_numpy("predict")
    assert labels.shape == (100,) and set(labels.tolist()) == {b"class_0"}
    # Binary outputs come with their sizes, not as JSON data.
    output = result.get_output("predict")
    assert "data" not in output and output["parameters"]["binary_data_size"] > 0
    # Counted and recorded for drift like a JSON request.
    assert requests_counted(server, "200") == before_ok + 1
    wait_for(
        lambda: drift_samples(server) == min(before_drift + 100, 1000),  # the window's size
        timeout=10,
        what="the drift window to hold the binary request's 100 rows",
    )


def test_tritonclient_http_with_json_and_a_requested_probability(
    server: Server, wine_row: dict[str, float]
) -> None:
    client = triton_http.InferenceServerClient(server.url.removeprefix("http://"))
    outputs = [
        triton_http.InferRequestedOutput("predict", binary_data=False),
        triton_http.InferRequestedOutput("predict_proba", binary_data=True),
    ]
    inputs = triton_inputs(triton_http, rows(wine_row, 3), binary_data=False)
    result = client.infer("wine", inputs, outputs=outputs, request_id="json-1")
    assert result.get_response()["id"] == "json-1"
    assert result.get_output("predict")["data"] == ["class_0"] * 3
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (3, 3) and np.allclose(proba.sum(axis=1), 1.0)


def test_binary_bytes_inputs_for_categorical_features(
    penguin_server: Server, penguin_row: dict[str, Any]
) -> None:
    client = triton_http.InferenceServerClient(penguin_server.url.removeprefix("http://"))
    columns = {
        name: np.array([value] * 2, dtype=object if isinstance(value, str) else np.float64)
        for name, value in penguin_row.items()
    }
    result = client.infer("penguins", triton_inputs(triton_http, columns))
    assert result.as_numpy("predict").tolist() == [b"Adelie", b"Adelie"]


def test_a_kserve_v2_rest_request(server: Server, wine_row: dict[str, float]) -> None:
    # As KServe's documentation writes one: nested [rows, 1] data and request parameters.
    body = {
        "id": "kserve-1",
        "parameters": {"content_type": "np"},
        "inputs": [
            {"name": k, "shape": [2, 1], "datatype": "FP64", "data": [[v], [v]]}
            for k, v in wine_row.items()
        ],
        "outputs": [{"name": "predict"}],
    }
    status, answer, headers = http("POST", server.url + INFER, json.dumps(body))
    assert status == 200, answer
    assert headers["Content-Type"].startswith("application/json")
    assert answer["id"] == "kserve-1" and answer["outputs"][0]["data"] == ["class_0"] * 2


# -- REST: bad binary input ------------------------------------------------------------


def binary_body(row: dict[str, float], sizes: dict[str, int] | None = None) -> tuple[bytes, int]:
    inputs, blobs = [], []
    for name, value in row.items():
        blob = struct.pack("<d", value)
        size = (sizes or {}).get(name, len(blob))
        inputs.append(
            {
                "name": name,
                "datatype": "FP64",
                "shape": [1],
                "parameters": {"binary_data_size": size},
            }
        )
        blobs.append(blob)
    header = json.dumps({"inputs": inputs}).encode()
    return header + b"".join(blobs), len(header)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("sizes that do not add up", "add up to"),
        ("a header length beyond the body", "but the body has only"),
        ("a header length that is not a number", "must be a byte count"),
        ("a datatype with no binary form", "has no binary form"),
        ("a size too small for the shape", "needs 8 bytes, got 4"),
        ("a NaN, refused as in JSON", "'alcohol' row 0: NaN and infinite values are refused"),
    ],
)
def test_bad_binary_input_is_refused_with_its_reason(
    server: Server, wine_row: dict[str, float], case: str, expected: str
) -> None:
    body, length = binary_body(wine_row)
    header_length = str(length)
    if case == "sizes that do not add up":
        body += b"\0" * 4  # bytes no input's binary_data_size accounts for
    elif case == "a NaN, refused as in JSON":
        body, length = binary_body({**wine_row, "alcohol": float("nan")})
        header_length = str(length)
    elif case == "a header length beyond the body":
        header_length = str(len(body) + 1)
    elif case == "a header length that is not a number":
        header_length = "twelve"
    elif case == "a datatype with no binary form":
        body = body.replace(b'"FP64"', b'"FLOAT"', 1)
        header_length = str(length + 1)
    elif case == "a size too small for the shape":
        body, length = binary_body(wine_row, {"alcohol": 4})
        header_length = str(length)
        body = body[:length] + body[length + 4 :]
    before = requests_counted(server, "400")
    status, answer, _ = http(
        "POST", server.url + INFER, body, {"Inference-Header-Content-Length": header_length}
    )
    assert status == 400, answer
    assert expected in answer["error"]
    assert requests_counted(server, "400") == before + 1


def test_binary_and_json_answers_agree(server: Server, wine_row: dict[str, float]) -> None:
    body, length = binary_body(wine_row)
    status, answer, _ = http(
        "POST", server.url + INFER, body, {"Inference-Header-Content-Length": str(length)}
    )
    assert status == 200
    assert answer["outputs"] == http("POST", server.url + INFER, v2_body(wine_row))[1]["outputs"]


# -- gRPC ------------------------------------------------------------------------------


def typed_request(row: dict[str, float], **extra: Any) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="wine", **extra)
    for name, value in row.items():
        tensor = request.inputs.add(name=name, datatype="FP64", shape=[1])
        tensor.contents.fp64_contents.append(value)
    return request


def test_grpc_health_metadata_and_typed_inference(
    server: Server, stub: pb_grpc.GRPCInferenceServiceStub, wine_row: dict[str, float]
) -> None:
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="wine", version="1")).ready
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="wine"))
    assert metadata.versions == ["1"] and metadata.inputs[0].name == "alcohol"
    before = requests_counted(server, "200")
    response = stub.ModelInfer(typed_request(wine_row, id="grpc-1"))
    assert response.id == "grpc-1" and response.model_version == "1"
    assert list(response.outputs[0].contents.bytes_contents) == [b"class_0"]
    assert requests_counted(server, "200") == before + 1


# tritonclient.grpc registers Triton's own `inference.*` messages, the same names as
# ours (imported by modelserver.server): one process cannot load both, so its client
# runs in a process of its own.
TRITON_GRPC_CLIENT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tritonclient.grpc as client_module
    address, row = sys.argv[1], json.loads(sys.argv[2])
    client = client_module.InferenceServerClient(address)
    inputs = []
    for name, value in row.items():
        tensor = client_module.InferInput(name, [5], "FP64")
        tensor.set_data_from_numpy(np.full(5, value))
        inputs.append(tensor)
    outputs = [client_module.InferRequestedOutput("predict_proba")]
    proba = client.infer("wine", inputs, outputs=outputs).as_numpy("predict_proba")
    print(json.dumps({
        "live": client.is_server_live(), "ready": client.is_model_ready("wine"),
        "proba": proba.tolist(),
    }))
""")


def test_tritonclient_grpc_with_raw_tensors(server: Server, wine_row: dict[str, float]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", TRITON_GRPC_CLIENT, server.grpc_address, json.dumps(wine_row)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["live"] and answer["ready"]
    proba = np.array(answer["proba"])
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1.0)


def test_grpc_bad_input_is_invalid_argument_with_the_rest_message(
    server: Server, stub: pb_grpc.GRPCInferenceServiceStub, wine_row: dict[str, float]
) -> None:
    no_hue = {k: v for k, v in wine_row.items() if k != "hue"}
    rest_status, rest_answer, _ = http("POST", server.url + INFER, v2_body(no_hue))
    assert rest_status == 400
    before = requests_counted(server, "400")
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelInfer(typed_request(no_hue))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == rest_answer["error"]
    assert requests_counted(server, "400") == before + 1
    # Raw contents that do not fit the shape: named, and still not INTERNAL.
    request = pb.ModelInferRequest(model_name="wine")
    for name in wine_row:
        request.inputs.add(name=name, datatype="FP64", shape=[2])
        request.raw_input_contents.append(b"\0" * 8)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelInfer(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs 16 bytes, got 8" in str(refused.value.details())


def test_grpc_unknown_model_is_not_found(
    stub: pb_grpc.GRPCInferenceServiceStub, wine_row: dict[str, float]
) -> None:
    request = typed_request(wine_row)
    request.model_name = "nope"
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelInfer(request)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "unknown model 'nope'" in str(refused.value.details())
    with pytest.raises(grpc.RpcError) as refused:
        stub.ModelMetadata(pb.ModelMetadataRequest(name="wine", version="7"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
