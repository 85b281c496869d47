"""Binary tensor data, the Open Inference Protocol's raw form, in and out.

Two transports carry tensors as bytes: the REST binary tensor data extension
(Triton's and KServe's clients use it by default: a JSON header of
`Inference-Header-Content-Length` bytes, then the tensors back to back) and
gRPC's `raw_input_contents`. Both come here to turn bytes into the same Python
values a JSON `data` list holds, so that `modelserver.inputs` validates every
request the same way whatever carried it, and to turn predictions back into
bytes. The layout is the protocol's: row-major, little-endian, no padding;
BYTES elements each prefixed by their length as a 4-byte little-endian
unsigned integer.

Messages name the tensor and the sizes, never the values.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from modelserver.inputs import InputError

HEADER_LENGTH = "Inference-Header-Content-Length"
# Fixed-size datatypes and their little-endian numpy layout.
FIXED_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str) -> tuple[Any, bytes]:
    """The JSON header (parsed) and the binary part of a binary-extension request body."""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if length < 0:
        raise InputError(
            f"the {HEADER_LENGTH} header must be a byte count, a non-negative integer",
            kind="bad_binary",
        )
    if length > len(body):
        raise InputError(
            f"the {HEADER_LENGTH} header says {length} bytes of JSON but the body has "
            f"only {len(body)}",
            kind="bad_binary",
        )
    if length == 0:
        raise InputError(
            f"the {HEADER_LENGTH} header says 0 bytes; the JSON header comes first",
            kind="bad_binary",
        )
    return parse_json(body[:length]), body[length:]


def parse_json(raw: bytes) -> Any:
    """A request's JSON, or an InputError saying why it is not JSON."""
    if not raw:
        raise InputError("empty request body; send a JSON object", kind="empty_body")
    try:
        return json.loads(raw)
    except RecursionError:
        raise InputError("malformed JSON: nested too deeply", kind="malformed_json") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InputError(f"malformed JSON: {exc}", kind="malformed_json") from None


def attach_binary_inputs(payload: Any, binary: bytes) -> None:
    """Give every input with `parameters.binary_data_size` its `data`, read in order from
    `binary`; the sizes must account for every byte."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if not isinstance(inputs, list):
        return  # the decoder names what is wrong with the header
    offset = 0
    for position, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            continue
        parameters = tensor.get("parameters")
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        name = tensor.get("name")
        label = repr(name) if isinstance(name, str) else f"inputs[{position}]"
        size = parameters["binary_data_size"]
        if type(size) is not int or size < 0:
            raise InputError(
                f"input {label}: parameters.binary_data_size must be a non-negative integer",
                kind="bad_binary",
            )
        if "data" in tensor:
            raise InputError(
                f"input {label} has both 'data' and parameters.binary_data_size; send one",
                kind="bad_binary",
            )
        if offset + size > len(binary):
            raise InputError(
                f"input {label}: binary_data_size {size} at byte {offset} runs past the "
                f"{len(binary)} bytes of binary data",
                kind="bad_binary",
            )
        tensor["data"] = decode_raw(
            label, tensor.get("datatype"), tensor.get("shape"), binary[offset : offset + size]
        )
        offset += size
    if offset != len(binary):
        raise InputError(
            f"the inputs' binary_data_size values add up to {offset} bytes but the body "
            f"carries {len(binary)} bytes of binary data",
            kind="bad_binary",
        )


def decode_raw(label: str, datatype: Any, shape: Any, raw: bytes) -> list[Any] | npt.NDArray[Any]:
    """The elements of one tensor's raw bytes, flat: an array of a fixed-size datatype, or
    the list of texts of BYTES (what JSON `data` holds); `modelserver.inputs` checks both."""
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InputError(
            f"input {label} needs a 'shape' of non-negative integers", kind="bad_shape"
        )
    count = math.prod(shape)
    if datatype == "BYTES":
        return _decode_bytes(label, raw, count)
    dtype = FIXED_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise InputError(
            f"input {label} has datatype {datatype!r}, which has no binary form; use one of "
            f"{', '.join([*FIXED_DTYPES, 'BYTES'])}",
            kind="bad_datatype",
        )
    if len(raw) != count * dtype.itemsize:
        raise InputError(
            f"input {label}: shape {shape} of {datatype} needs {count * dtype.itemsize} bytes, "
            f"got {len(raw)}",
            kind="bad_binary",
        )
    # An array, not a list: the decoder checks it without a loop over the values.
    return np.frombuffer(raw, dtype=dtype)


def _decode_bytes(label: str, raw: bytes, count: int) -> list[Any]:
    values: list[Any] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InputError(
                f"input {label}: BYTES element {len(values)} has a truncated length prefix",
                kind="bad_binary",
            )
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InputError(
                f"input {label}: BYTES element {len(values)} says {length} bytes but only "
                f"{len(raw) - offset} remain",
                kind="bad_binary",
            )
        values.append(_text(label, len(values), raw[offset : offset + length]))
        offset += length
    if len(values) != count:
        raise InputError(
            f"input {label}: its shape holds {count} elements but the binary data has "
            f"{len(values)} BYTES elements",
            kind="bad_binary",
        )
    return values


def _text(label: str, index: int, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"input {label}: BYTES element {index} is not UTF-8 text", kind="bad_value"
        ) from None


def decode_bytes_elements(label: str, elements: Sequence[bytes]) -> list[Any]:
    """gRPC's typed `bytes_contents`: each element as text, as JSON would carry it."""
    return [_text(label, i, value) for i, value in enumerate(elements)]


def encode_raw(values: npt.NDArray[Any], datatype: str) -> bytes:
    """A tensor's elements as the protocol's raw bytes (row-major, little-endian)."""
    if datatype == "BYTES":
        parts = []
        for item in values.reshape(-1).tolist():
            data = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(values, dtype=FIXED_DTYPES[datatype]).tobytes()


def binary_outputs(payload: Any, names: Sequence[str]) -> frozenset[str]:
    """Which of the outputs `names` the request asks for in binary: all of them with
    `parameters.binary_data_output: true`, else those whose requested output says
    `parameters.binary_data: true`. The decoder has already checked `outputs`."""
    if not isinstance(payload, dict):
        return frozenset()
    parameters = payload.get("parameters")
    wanted: set[str] = set()
    if isinstance(parameters, dict) and parameters.get("binary_data_output") is True:
        wanted.update(names)
    for item in payload.get("outputs") or ():
        if isinstance(item, dict) and isinstance(item.get("parameters"), dict):
            choice = item["parameters"].get("binary_data")
            if choice is True:
                wanted.add(item["name"])
            elif choice is False:
                wanted.discard(item["name"])
    return frozenset(wanted)
