"""Trained artifacts shared by the model-server tests (real pipelines, bundled data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelrollout.devenv.postgres import PostgresServer
from modelserver.datasets import load_dataset
from modelserver.training import train


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """`<dataset>-<variant>` -> the JSON `modelrollout train` prints for it."""
    out = tmp_path_factory.mktemp("models")
    trained = {}
    for dataset, variant in [
        ("wine", "baseline"),
        ("wine", "improved"),
        ("wine", "degraded"),
        ("wine", "shifted"),
        ("penguins", "improved"),
    ]:
        trained[f"{dataset}-{variant}"] = train(dataset, variant, Path(out)).to_json()
    return trained


@pytest.fixture(scope="session")
def wine_row() -> dict[str, float]:
    data = load_dataset("wine")
    return {name: float(v) for name, v in zip(data.feature_names, data.X[0], strict=True)}


@pytest.fixture(scope="session")
def penguin_row() -> dict[str, Any]:
    data = load_dataset("penguins")
    row = data.X[0]
    return {
        f.name: (str(row[i]) if f.kind == "categorical" else float(row[i]))
        for i, f in enumerate(data.features)
    }


@pytest.fixture(scope="session")
def records_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL (Debian's) for the inference-records store, on loopback."""
    with PostgresServer(tmp_path_factory.mktemp("records")) as server:
        yield server.dsn
