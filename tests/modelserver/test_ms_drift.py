"""The drift window: binning, minimum sample count, sliding, unseen categories."""

from __future__ import annotations

import numpy as np
import pytest

from modelserver.drift import DriftMonitor
from modelserver.profile import ReferenceProfile, categorical_profile, numeric_profile
from modelserver.stats import psi

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(7)
TRAINING = RNG.normal(0.0, 1.0, 5000)


def make_profile() -> ReferenceProfile:
    return ReferenceProfile(
        features=(
            numeric_profile("x", TRAINING, 10),
            categorical_profile("colour", ["red"] * 60 + ["blue"] * 40),
        ),
        prediction=categorical_profile("prediction", ["a"] * 50 + ["b"] * 50, ["a", "b"]),
        n_samples=5000,
        classes=("a", "b"),
    )


def feed(monitor: DriftMonitor, x: np.ndarray, colour_codes: np.ndarray) -> None:
    predictions = np.where(x > 0, "a", "b")
    monitor.record(x.reshape(-1, 1), colour_codes.reshape(-1, 1).astype(np.int16), predictions)


def test_deciles_of_training_data_hold_a_tenth_each() -> None:
    profile = make_profile()
    assert len(profile.features[0].edges) == 9
    assert profile.features[0].shares == pytest.approx([0.1] * 10, abs=1e-3)
    assert profile.features[1].categories == ("blue", "red")


def test_no_statistics_until_the_window_holds_the_minimum() -> None:
    monitor = DriftMonitor(make_profile(), window=500, min_samples=200)
    feed(monitor, RNG.normal(size=199), np.zeros(199))
    early = monitor.evaluate()
    assert early.samples == 199
    assert not early.ready
    assert early.feature_psi == {}
    feed(monitor, RNG.normal(size=1), np.zeros(1))
    assert monitor.evaluate().ready


def test_psi_of_the_window_equals_psi_of_its_rows_binned_independently() -> None:
    profile = make_profile()
    monitor = DriftMonitor(profile, window=400, min_samples=1)
    x = RNG.normal(0.7, 1.0, 400)
    colours = RNG.integers(0, 2, 400)
    feed(monitor, x, colours)
    snapshot = monitor.evaluate()
    edges = np.quantile(TRAINING, np.linspace(0, 1, 11)[1:-1])
    shares = np.bincount(np.digitize(x, edges), minlength=10) / 400
    assert snapshot.feature_psi["x"] == pytest.approx(psi(np.full(10, 0.1), shares), abs=2e-3)
    colour_shares = np.append(np.bincount(colours, minlength=2) / 400, 0.0)
    assert snapshot.feature_psi["colour"] == pytest.approx(
        psi(np.array([0.4, 0.6, 0.0]), colour_shares)
    )


def test_the_window_slides_old_rows_out() -> None:
    monitor = DriftMonitor(make_profile(), window=1000, min_samples=1000)
    feed(monitor, RNG.normal(0.0, 1.0, 1000), RNG.integers(0, 2, 1000))
    assert monitor.evaluate().feature_psi["x"] < 0.05
    # 700 shifted rows, in uneven chunks that wrap around the ring.
    for size in (300, 250, 150):
        feed(monitor, RNG.normal(2.0, 1.0, size), RNG.integers(0, 2, size))
    drifted = monitor.evaluate()
    assert drifted.samples == 1000
    assert drifted.feature_psi["x"] > 1.0
    feed(monitor, RNG.normal(0.0, 1.0, 1000), RNG.integers(0, 2, 1000))
    assert monitor.evaluate().feature_psi["x"] < 0.05


def test_a_batch_larger_than_the_window_keeps_its_newest_rows() -> None:
    monitor = DriftMonitor(make_profile(), window=100, min_samples=100)
    x = np.concatenate([RNG.normal(5.0, 1.0, 500), RNG.normal(0.0, 1.0, 100)])
    feed(monitor, x, np.zeros(600))
    assert monitor.evaluate().feature_psi["x"] < 0.3


def test_unseen_categories_fill_the_extra_bin_and_raise_psi() -> None:
    monitor = DriftMonitor(make_profile(), window=1000, min_samples=1)
    unseen = 2  # the code for "not in training": len(categories)
    codes = np.where(RNG.random(1000) < 0.2, unseen, RNG.integers(0, 2, 1000))
    feed(monitor, RNG.normal(size=1000), codes)
    snapshot = monitor.evaluate()
    assert snapshot.feature_psi["colour"] > 0.25
    assert snapshot.feature_pvalue["colour"] == 0.0


def test_prediction_drift_follows_the_predicted_classes() -> None:
    monitor = DriftMonitor(make_profile(), window=1000, min_samples=1)
    feed(monitor, np.abs(RNG.normal(size=1000)), np.zeros(1000))  # all predicted "a"
    assert monitor.evaluate().prediction_psi == pytest.approx(
        psi(np.array([0.5, 0.5, 0.0]), np.array([1.0, 0.0, 0.0]))
    )
