"""The binary tensor codec: bytes in the protocol's layout to the decoder's values and back."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from modelserver.inputs import InputError
from modelserver.tensors import attach_binary_inputs, binary_outputs, decode_raw, encode_raw

pytestmark = pytest.mark.unit


def test_fixed_size_and_bytes_tensors_round_trip() -> None:
    values = np.array([1.5, -2.0, 3.25])
    for datatype in ("FP64", "FP32", "INT32", "INT64"):
        raw = encode_raw(values if datatype.startswith("FP") else values.astype(int), datatype)
        decoded = decode_raw("'x'", datatype, [3], raw)
        assert np.allclose(decoded, values if datatype.startswith("FP") else [1, -2, 3])
    texts = np.array(["Adelie", "", "Gentoo"], dtype=object)
    raw = encode_raw(texts, "BYTES")
    assert raw[:4] == struct.pack("<I", 6)  # little-endian length prefix
    assert decode_raw("'species'", "BYTES", [3], raw) == ["Adelie", "", "Gentoo"]


@pytest.mark.parametrize(
    ("datatype", "shape", "raw", "message"),
    [
        ("FP64", [2], b"\0" * 12, "needs 16 bytes, got 12"),
        ("FLOAT", [1], b"\0" * 8, "has no binary form"),
        ("BYTES", [1], b"\x05\0\0\0abc", "says 5 bytes but only 3 remain"),
        ("BYTES", [2], b"\x01\0\0\0a", "holds 2 elements but the binary data has 1"),
        ("BYTES", [1], b"\x01\0", "truncated length prefix"),
        ("BYTES", [1], b"\x01\0\0\0\xff", "not UTF-8"),
        ("FP64", [-1], b"", "non-negative integers"),
    ],
)
def test_bad_raw_tensors_name_the_problem(
    datatype: str, shape: list[int], raw: bytes, message: str
) -> None:
    with pytest.raises(InputError, match=message) as refused:
        decode_raw("'x'", datatype, shape, raw)
    assert refused.value.status == 400


def test_binary_inputs_are_read_in_order_and_must_use_every_byte() -> None:
    payload = {
        "inputs": [
            {"name": "a", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}},
            {"name": "b", "datatype": "FP64", "shape": [1], "data": [2.0]},
            {"name": "c", "datatype": "INT32", "shape": [1], "parameters": {"binary_data_size": 4}},
        ]
    }
    attach_binary_inputs(payload, struct.pack("<di", 1.0, 7))
    assert [list(t["data"]) for t in payload["inputs"]] == [[1.0], [2.0], [7]]
    with pytest.raises(InputError, match="add up to 12 bytes but the body carries 13"):
        attach_binary_inputs(
            {"inputs": [
                {"name": "a", "datatype": "FP64", "shape": [1],
                 "parameters": {"binary_data_size": 8}},
                {"name": "c", "datatype": "INT32", "shape": [1],
                 "parameters": {"binary_data_size": 4}},
            ]},
            b"\0" * 13,
        )  # fmt: skip


def test_binary_outputs_globally_or_per_output() -> None:
    names = ("predict", "predict_proba")
    assert binary_outputs({"parameters": {"binary_data_output": True}}, names) == set(names)
    per_output = {
        "outputs": [
            {"name": "predict", "parameters": {"binary_data": False}},
            {"name": "predict_proba", "parameters": {"binary_data": True}},
        ]
    }
    assert binary_outputs(per_output, names) == {"predict_proba"}
    assert binary_outputs({"outputs": [{"name": "predict"}]}, names) == set()
