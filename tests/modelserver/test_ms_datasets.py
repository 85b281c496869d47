"""The bundled datasets: the regression table sends numeric labels as feedback, and
`loadgen --dataset` offers exactly the tables `load_dataset` knows."""

from __future__ import annotations

import json

import pytest

from modelrollout.cli import build_parser
from modelserver.datasets import DATASETS, load_dataset
from modelserver.loadgen import LoadConfig, prepare_requests

pytestmark = pytest.mark.unit


def test_the_regression_table_sends_its_numeric_targets_as_feedback_labels() -> None:
    data = load_dataset("diabetes")
    assert data.task == "regression" and data.y.dtype.kind == "f"
    config = LoadConfig(urls=(), model="diabetes", dataset="diabetes", seed=1, batch=3)
    pool = prepare_requests(config, data, 5)
    for item in pool:
        assert len(item.labels) == 3
        assert all(isinstance(label, float) for label in item.labels)
        assert all(float(label) in set(data.y.tolist()) for label in item.labels)
        names = [tensor["name"] for tensor in json.loads(item.body)["inputs"]]
        assert names == list(data.feature_names)


def test_classification_labels_stay_strings() -> None:
    pool = prepare_requests(LoadConfig(urls=(), model="wine"), load_dataset("wine"), 3)
    assert all(isinstance(label, str) for item in pool for label in item.labels)


def test_loadgen_offers_every_bundled_dataset() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    loadgen = subparsers.choices["loadgen"]  # type: ignore[attr-defined]
    dataset = next(a for a in loadgen._actions if a.dest == "dataset")
    assert tuple(dataset.choices) == DATASETS
