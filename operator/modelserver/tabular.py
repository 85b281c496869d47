"""Reading a user's training table (CSV or Parquet) and telling its column kinds.

`modelrollout package` takes data as the data scientist has it: a file or a
pandas DataFrame. This module is the one place that decides which files are
accepted and whether a column is profiled as numeric or categorical, so the
packager, its tests and its documentation agree. pandas reads both formats
(Parquet through pyarrow); neither is imported by the serving path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelserver.profile import Kind

if TYPE_CHECKING:
    import pandas as pd

DATA_FORMATS = {".csv": "csv", ".parquet": "parquet"}
KINDS: tuple[Kind, ...] = ("numeric", "categorical")


class TableError(ValueError):
    """The data cannot be used; the message names the file, column or value."""


def data_format(path: Path) -> str:
    fmt = DATA_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TableError(
            f"cannot read {path.name}: data must be {' or '.join(DATA_FORMATS)} "
            "(save a DataFrame with df.to_csv or df.to_parquet)"
        )
    return fmt


def read_table(path: Path) -> pd.DataFrame:
    """The table in a .csv or .parquet file, refusing anything else or an empty table."""
    import pandas as pd

    fmt = data_format(path)
    if not path.is_file():
        raise TableError(f"data file {path} does not exist or is not a file")
    try:
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except ImportError as exc:
        raise TableError(f"reading Parquet needs pyarrow: pip install pyarrow ({exc})") from None
    except Exception as exc:
        raise TableError(f"cannot read {path.name} as {fmt}: {first_line(exc)}") from None
    if frame.empty:
        raise TableError(f"{path.name} has no rows")
    return frame


def infer_kinds(frame: pd.DataFrame, overrides: Mapping[str, str] | None = None) -> dict[str, Kind]:
    """Column -> kind: numbers and booleans are numeric (integer codes too: a number's
    order means something more often than not), anything else categorical;
    `overrides` (column -> kind) wins, and must name existing columns and kinds."""
    from pandas.api import types

    kinds: dict[str, Kind] = {}
    for name in frame.columns:
        column = frame[name]
        numeric = types.is_bool_dtype(column) or (
            types.is_numeric_dtype(column) and not types.is_complex_dtype(column)
        )
        kinds[str(name)] = "numeric" if numeric else "categorical"
    for name, kind in (overrides or {}).items():
        if name not in kinds:
            raise TableError(
                f"feature type given for {name!r}, which is not a feature column; "
                f"the features are {', '.join(kinds)}"
            )
        if kind not in KINDS:
            raise TableError(f"feature type of {name!r} is {kind!r}; use numeric or categorical")
        if kind == "numeric" and kinds[name] != "numeric":
            raise TableError(
                f"feature {name!r} holds {frame[name].dtype} values, which cannot be numeric"
            )
        kinds[name] = kind
    return kinds


def served_matrix(frame: pd.DataFrame, kinds: Mapping[str, Kind]) -> Any:
    """The matrix the server builds from a request with these rows (modelserver.inputs):
    float64 when every column is numeric, else objects (floats and strings), in the
    frame's column order. Packaging predicts on exactly this, so what it measured
    is what will be served."""
    import numpy as np

    names = list(kinds)
    if all(kinds[n] == "numeric" for n in names):
        return frame[names].to_numpy(dtype=np.float64, na_value=np.nan)
    matrix = np.empty((len(frame), len(names)), dtype=object)
    for i, name in enumerate(names):
        column = frame[name]
        if kinds[name] == "numeric":
            matrix[:, i] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            matrix[:, i] = [None if _is_null(v) else str(v) for v in column.tolist()]
    return matrix


def _is_null(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def first_line(exc: BaseException) -> str:
    """An exception's first line: library errors can run to pages."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
