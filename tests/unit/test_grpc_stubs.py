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


def test_the_stubs_carry_the_protocol_messages_unchanged(tmp_path: Path) -> None:
    # Read from a descriptor set, not by importing the stubs: tritonclient's modules,
    # imported by the model-server tests, register the same `inference.*` names.
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    out = tmp_path / "set.pb"
    proto = generate.PROTO
    assert (
        protoc.main(["protoc", f"-I{proto.parent}", f"--descriptor_set_out={out}", str(proto)]) == 0
    )
    (file,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert file.package == "inference"
    messages = {m.name: m for m in file.message_type}
    # Field numbers are the wire format: a client built from KServe's proto must agree.
    assert {f.name: f.number for f in messages["ModelInferRequest"].field} == {
        "model_name": 1, "model_version": 2, "id": 3, "parameters": 4,
        "inputs": 5, "outputs": 6, "raw_input_contents": 7,
    }  # fmt: skip
    (service,) = file.service
    assert service.name == "GRPCInferenceService"
    assert {m.name for m in service.method} == {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
    }  # fmt: skip
