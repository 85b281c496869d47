"""The committed gRPC stubs are what grpcio-tools makes of the committed .proto today."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelserver.grpc import generate

pytestmark = pytest.mark.unit


def test_regenerating_the_stubs_changes_nothing(tmp_path: Path) -> None:
    for fresh in generate.generate(tmp_path):
        committed = generate.HERE / fresh.name
        assert fresh.read_text() == committed.read_text(), (
            f"{committed} is stale: run `make grpc-stubs` and commit the result"
        )


def test_the_stubs_carry_the_protocol_messages_unchanged() -> None:
    from modelserver.grpc import grpc_predict_v2_pb2 as pb

    # Field numbers are the wire format: a client built from KServe's proto must agree.
    request = pb.ModelInferRequest.DESCRIPTOR
    assert request.full_name == "inference.ModelInferRequest"
    assert {f.name: f.number for f in request.fields} == {
        "model_name": 1, "model_version": 2, "id": 3, "parameters": 4,
        "inputs": 5, "outputs": 6, "raw_input_contents": 7,
    }  # fmt: skip
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert {m.name for m in service.methods} == {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
    }  # fmt: skip
