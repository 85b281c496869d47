"""Turns an inference request body into a validated feature matrix, or says precisely why not.

Every way a body can be wrong becomes an `InputError` carrying the HTTP status
and a message naming the problem (which feature, which row), so the transport
answers 4xx and never 500. Values are checked strictly: a JSON string is not a
number and `true` is not 1, because silently coercing them would serve
predictions for data nobody sent. Requested values never appear in messages, so
errors can be logged without leaking payloads. Messages may still name
client-chosen strings (an unknown feature's name, an id), so they go back to
the client only: the log gets the error's `kind` and counts instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from modelserver.profile import ReferenceProfile

# BOOL is left out on purpose: true/false is not a measurement.
NUMERIC_DATATYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"}
    | {"UINT64"}
)
CATEGORICAL_DATATYPES = frozenset({"BYTES"})
OUTPUT_NAMES = ("predict", "predict_proba")
# Request ids go back in the X-Request-Id response header and into feedback
# lookups: visible ASCII only (no spaces, no control characters, nothing a
# header cannot carry), like UUIDs, W3C trace ids or ULIDs.
MAX_ID_LENGTH = 200
# The same rule in the OpenAPI document (modelserver.openapi).
REQUEST_ID_PATTERN = f"[!-~]{{1,{MAX_ID_LENGTH}}}"
_ID = re.compile(REQUEST_ID_PATTERN)


class InputError(ValueError):
    """The request is wrong; `status` is the HTTP status to answer with.

    `kind` is a fixed word for the log (the message may echo client strings);
    `missing` lists the model's features the request lacked, counted in
    `modelserver_feature_missing_total` whichever error is reported;
    `unknown` is how many input names the model does not know.
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        missing: Sequence[str] = (),
        kind: str = "invalid_input",
        unknown: int = 0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.missing = tuple(missing)
        self.kind = kind
        self.unknown = unknown

    def add_missing(self, missing: Sequence[str]) -> None:
        self.missing = tuple(dict.fromkeys((*self.missing, *missing)))


def check_request_id(value: object, what: str) -> str:
    """`value` if it is a usable request id, else an InputError naming the problem."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    rule = (
        f"{what} must be 1 to {MAX_ID_LENGTH} visible ASCII characters "
        "(letters, digits, punctuation; no spaces or control characters)"
    )
    if not isinstance(value, str):
        problem = f"got {type(value).__name__}"
    elif not value:
        problem = "got an empty string"
    elif len(value) > MAX_ID_LENGTH:
        problem = f"got {len(value)} characters"
    else:
        position, char = next((i, c) for i, c in enumerate(value) if not "!" <= c <= "~")
        problem = f"character {position} is U+{ord(char):04X}"
        if not char.isprintable():
            problem += ", a control or unprintable character"
        elif char.isspace():
            problem += ", a space"
    raise InputError(f"{rule}; {problem}", kind="bad_id")


@dataclass
class Decoded:
    """A validated request: the model matrix plus what drift monitoring needs."""

    request_id: str
    rows: int
    matrix: npt.NDArray[Any]
    numeric: npt.NDArray[np.float64]
    codes: npt.NDArray[np.int16]
    unseen: dict[str, int] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("predict",)
    # A champion's shadow copy (modelserver.shadow), set by the transport.
    copy: bool = False


class InputSchema:
    """What the served model accepts, derived from its reference profile."""

    def __init__(self, profile: ReferenceProfile, max_rows: int) -> None:
        self.features = profile.features
        self.names = profile.feature_names
        self.max_rows = max_rows
        self._all_numeric = profile.all_numeric
        self._numeric_idx = [i for i, f in enumerate(self.features) if f.kind == "numeric"]
        self._categorical_idx = [i for i, f in enumerate(self.features) if f.kind == "categorical"]
        self._categories = {
            f.name: {c: i for i, c in enumerate(f.categories)}
            for f in self.features
            if f.kind == "categorical"
        }
        self._known = frozenset(self.names)

    # -- Open Inference Protocol (V2) -------------------------------------------------------

    def decode_v2(self, payload: Any, request_id: str) -> Decoded:
        if not isinstance(payload, dict):
            raise InputError(
                "request body must be a JSON object with an 'inputs' list", kind="malformed_body"
            )
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InputError(
                "'inputs' must be a non-empty list, one tensor per feature", kind="malformed_body"
            )
        # Absent features are counted whatever error the request is refused for
        # (a renamed feature is unknown and missing at once; a bad shape on one
        # feature says nothing about the others being there).
        present = {
            name
            for tensor in inputs
            if isinstance(tensor, dict) and isinstance(name := tensor.get("name"), str)
        }
        try:
            return self._decode_v2(payload, inputs, request_id)
        except InputError as exc:
            exc.add_missing([n for n in self.names if n not in present])
            raise

    def _decode_v2(self, payload: dict[str, Any], inputs: list[Any], request_id: str) -> Decoded:
        rid = check_request_id(payload["id"], "'id'") if "id" in payload else request_id
        columns: dict[str, list[Any]] = {}
        datatypes: dict[str, str] = {}
        rows: int | None = None
        for position, tensor in enumerate(inputs):
            name, datatype, data = _tensor_parts(tensor, position)
            if name in columns:
                raise InputError(f"input {name!r} appears more than once", kind="duplicate_input")
            if name in self._known:
                # Checked before the shape, so a wrong shape on a known feature is
                # reported against that feature.
                count = _rows_of(name, tensor.get("shape"), data)
                if rows is not None and count != rows:
                    raise InputError(
                        f"input {name!r} has {count} rows but earlier inputs have {rows}; "
                        "every feature needs one value per row",
                        kind="bad_shape",
                    )
                rows = count
            columns[name] = data
            datatypes[name] = datatype
        self._check_names(columns)
        assert rows is not None  # at least one known input, or _check_names raised
        for name, datatype in datatypes.items():
            self._check_datatype(name, datatype)
        return self._decode(columns, rows, rid, _requested_outputs(payload.get("outputs")))

    # -- KServe V1 ---------------------------------------------------------------------------

    def decode_v1(self, payload: Any, request_id: str) -> Decoded:
        if not isinstance(payload, dict):
            raise InputError(
                "request body must be a JSON object with an 'instances' list", kind="malformed_body"
            )
        instances = payload.get("instances")
        if not isinstance(instances, list) or not instances:
            raise InputError("'instances' must be a non-empty list of rows", kind="malformed_body")
        self._check_rows(len(instances))
        columns: dict[str, list[Any]] = {name: [] for name in self.names}
        if all(isinstance(row, dict) for row in instances):
            seen: set[str] = set()
            for row in instances:
                seen.update(row)
            try:
                self._check_names({name: [] for name in seen})
                for r, row in enumerate(instances):
                    absent = [n for n in self.names if n not in row]
                    if absent:
                        raise InputError(
                            f"instance {r} lacks feature(s) {', '.join(absent)}",
                            missing=absent,
                            kind="missing_feature",
                        )
                    for name in self.names:
                        columns[name].append(row[name])
            except InputError as exc:
                # Counted once per request for every feature any instance lacks.
                exc.add_missing([n for n in self.names if any(n not in row for row in instances)])
                raise
        elif all(isinstance(row, list) for row in instances):
            for r, row in enumerate(instances):
                if len(row) != len(self.names):
                    raise InputError(
                        f"instance {r} has {len(row)} values; expected {len(self.names)} "
                        f"in this order: {', '.join(self.names)}",
                        kind="bad_shape",
                    )
                for name, value in zip(self.names, row, strict=True):
                    columns[name].append(value)
        else:
            raise InputError(
                "each instance must be an object of features or a list of values",
                kind="malformed_body",
            )
        return self._decode(columns, len(instances), request_id, ("predict",))

    # -- shared ------------------------------------------------------------------------------

    def _check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise InputError(
                f"{rows} rows exceed the limit of {self.max_rows} per request "
                "(MODELSERVER_MAX_BATCH_ROWS); split the batch",
                status=413,
                kind="too_many_rows",
            )

    def _check_names(self, columns: dict[str, Any]) -> None:
        unknown = sorted(n for n in columns if n not in self._known)
        missing = [n for n in self.names if n not in columns]
        if not unknown and not missing:
            return
        problems = []
        if unknown:
            problems.append(f"unknown feature(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing feature(s) {', '.join(missing)}")
        raise InputError(
            f"{'; '.join(problems)}; this model takes {', '.join(self.names)}",
            missing=missing,
            kind="unknown_feature" if unknown else "missing_feature",
            unknown=len(unknown),
        )

    def _check_datatype(self, name: str, datatype: str) -> None:
        kind = self.features[self.names.index(name)].kind
        allowed = NUMERIC_DATATYPES if kind == "numeric" else CATEGORICAL_DATATYPES
        if datatype not in allowed:
            wanted = "a numeric datatype such as FP64" if kind == "numeric" else "BYTES"
            raise InputError(
                f"input {name!r} has datatype {datatype!r}; {kind} needs {wanted}",
                kind="bad_datatype",
            )

    def _decode(
        self, columns: dict[str, list[Any]], rows: int, request_id: str, outputs: tuple[str, ...]
    ) -> Decoded:
        self._check_rows(rows)
        numeric_columns = [
            _numeric_column(self.names[i], columns[self.names[i]]) for i in self._numeric_idx
        ]
        numeric = (
            np.column_stack(numeric_columns) if numeric_columns else np.empty((rows, 0))
        ).astype(np.float64, copy=False)
        codes = np.empty((rows, len(self._categorical_idx)), dtype=np.int16)
        unseen: dict[str, int] = {}
        categorical_columns = []
        for j, i in enumerate(self._categorical_idx):
            name = self.names[i]
            values = _categorical_column(name, columns[name])
            index = self._categories[name]
            other = len(index)
            column_codes = [index.get(v, other) for v in values]
            codes[:, j] = column_codes
            count = column_codes.count(other)
            if count:
                unseen[name] = count
            categorical_columns.append(values)
        if self._all_numeric:
            matrix: npt.NDArray[Any] = numeric
        else:
            matrix = np.empty((rows, len(self.names)), dtype=object)
            for j, i in enumerate(self._numeric_idx):
                matrix[:, i] = numeric[:, j]
            for j, i in enumerate(self._categorical_idx):
                matrix[:, i] = categorical_columns[j]
        return Decoded(request_id, rows, matrix, numeric, codes, unseen, outputs)


def _tensor_parts(tensor: Any, position: int) -> tuple[str, str, Any]:
    if not isinstance(tensor, dict):
        raise InputError(
            f"inputs[{position}] must be an object with name, datatype, shape, data",
            kind="malformed_body",
        )
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"inputs[{position}] needs a string 'name'", kind="malformed_body")
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str):
        raise InputError(f"input {name!r} needs a string 'datatype'", kind="malformed_body")
    data = tensor.get("data")
    # An array: a binary tensor's elements (modelserver.tensors), already typed.
    if not isinstance(data, list | np.ndarray):
        raise InputError(f"input {name!r} needs a 'data' list", kind="malformed_body")
    return name, datatype, data


def _rows_of(name: str, shape: Any, data: list[Any] | npt.NDArray[Any]) -> int:
    """Rows in a per-feature tensor: shape [n] or [n, 1], data flat or nested [[v], ...]."""
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
        or shape[0] < 1
    ):
        raise InputError(
            f"input {name!r} has shape {shape!r}; one feature per input needs [rows] or [rows, 1]",
            kind="bad_shape",
        )
    if isinstance(data, list) and data and isinstance(data[0], list):
        if not all(isinstance(item, list) and len(item) == 1 for item in data):
            raise InputError(
                f"input {name!r}: nested data must be [[value], [value], ...]", kind="bad_shape"
            )
        data[:] = [item[0] for item in data]
    if len(data) != shape[0]:
        raise InputError(
            f"input {name!r} has {len(data)} values but its shape says {shape[0]}",
            kind="bad_shape",
        )
    return int(shape[0])


def _numeric_column(name: str, values: Any) -> npt.NDArray[np.float64]:
    if isinstance(values, np.ndarray):
        return _numeric_array(name, values)
    for row, value in enumerate(values):
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                raise InputError(
                    f"feature {name!r} row {row}: NaN and infinite values are refused",
                    kind="bad_value",
                )
        elif kind is not int:
            if value is None:
                raise InputError(
                    f"feature {name!r} row {row} is missing (null)",
                    missing=[name],
                    kind="missing_feature",
                )
            raise InputError(
                f"feature {name!r} row {row}: expected a number, got {type(value).__name__}",
                kind="bad_value",
            )
    try:
        return np.asarray(values, dtype=np.float64)
    except OverflowError:
        raise InputError(
            f"feature {name!r}: an integer is too large for a float", kind="bad_value"
        ) from None


def _numeric_array(name: str, values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """A binary tensor's column: the same rules as JSON numbers, checked without a loop."""
    if values.dtype.kind not in "iuf":
        raise InputError(
            f"feature {name!r} row 0: expected a number, got {values.dtype.name}",
            kind="bad_value",
        )
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            raise InputError(
                f"feature {name!r} row {int(np.argmin(finite))}: NaN and infinite values "
                "are refused",
                kind="bad_value",
            )
    return values.astype(np.float64, copy=False)


def _categorical_column(name: str, values: Any) -> list[str]:
    if isinstance(values, np.ndarray):  # a binary tensor of numbers (BYTES arrive as a list)
        raise InputError(
            f"feature {name!r} row 0: expected a string, got {values.dtype.name}",
            kind="bad_value",
        )
    for row, value in enumerate(values):
        if type(value) is not str:
            if value is None:
                raise InputError(
                    f"feature {name!r} row {row} is missing (null)",
                    missing=[name],
                    kind="missing_feature",
                )
            raise InputError(
                f"feature {name!r} row {row}: expected a string, got {type(value).__name__}",
                kind="bad_value",
            )
    texts: list[str] = values
    return texts


def _requested_outputs(outputs: Any) -> tuple[str, ...]:
    if outputs is None:
        return ("predict",)
    if not isinstance(outputs, list) or not outputs:
        raise InputError(
            "'outputs' must be a non-empty list of {\"name\": ...} objects", kind="unknown_output"
        )
    names = []
    for item in outputs:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in OUTPUT_NAMES:
            raise InputError(
                f"unknown output {name!r}; available: {', '.join(OUTPUT_NAMES)}",
                kind="unknown_output",
            )
        names.append(name)
    return tuple(dict.fromkeys(names))
