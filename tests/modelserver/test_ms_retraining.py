"""`modelrollout retrain`: a served model refitted on fresh labelled rows replaces the
champion only when it scores no worse on the same held-out rows.

The champions are a user's own pipelines, fitted and packaged here as a data scientist
would (`modelserver.packaging.package`). The world they were trained on is one region
of feature space; the fresh data comes from another, where the old decision boundary
no longer holds (the true class is `x2 > x1**2`, a curve a linear model fits only
locally), so a candidate refitted there wins and one asked to win by an impossible
margin loses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelrollout.cli import main
from modelrollout.devenv.ports import free_port
from modelserver import artifact
from modelserver.packaging import package
from modelserver.retraining import (
    RetrainError,
    RetrainOutcome,
    load_champion,
    retrain,
)
from modelserver.tabular import served_matrix

pytestmark = pytest.mark.unit

OLD_WORLD = (-3.0, -1.0)  # where the champions were trained
NEW_WORLD = (1.0, 3.0)  # where the fresh rows come from


def world(n: int, x1_range: tuple[float, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(*x1_range, n)
    x2 = rng.uniform(0.0, 10.0, n)
    color = rng.choice(["red", "green", "blue"], n)
    label = np.where(x2 > x1**2, "high", "low")
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "label": label})


def frame_pipeline() -> Any:
    """Fitted on a DataFrame (column names, a categorical column): handed one when served."""
    prepare = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["color"]), remainder=StandardScaler()
    )
    return make_pipeline(prepare, LogisticRegression(C=0.5, max_iter=1000))


def champion_of(kind: str, out: Path) -> Path:
    old = world(300, OLD_WORLD, seed=1)
    if kind == "dataframe":
        model = frame_pipeline().fit(old.drop(columns="label"), old["label"])
    elif kind == "array":
        old = old.drop(columns="color")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5))
        model.fit(old[["x1", "x2"]].to_numpy(), old["label"])
    else:
        from lightgbm import LGBMClassifier

        old = old.drop(columns="color")
        model = LGBMClassifier(n_estimators=30, min_child_samples=10, verbose=-1)
        model.fit(old[["x1", "x2"]], old["label"])
    package(model, old, "label", out, name=f"curve-{kind}")
    return out


@pytest.fixture(scope="module")
def champions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("champions")
    return {k: champion_of(k, root / k) for k in ("dataframe", "array", "lightgbm")}


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    old = pd.DataFrame({"x1": rng.uniform(0, 10, 300), "x2": rng.normal(0, 1, 300)})
    old["y"] = 3 * old["x1"] + rng.normal(0, 0.5, 300)
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(old[["x1", "x2"]], old["y"])
    out = tmp_path_factory.mktemp("regressor") / "pkg"
    package(model, old, "y", out, name="linear")
    return out


def shifted_regression(n: int, seed: int) -> pd.DataFrame:
    """The same inputs, but every target is 10 higher now (a concept shift)."""
    rng = np.random.default_rng(seed)
    fresh = pd.DataFrame({"x1": rng.uniform(0, 10, n), "x2": rng.normal(0, 1, n)})
    fresh["label"] = 3 * fresh["x1"] + 10 + rng.normal(0, 0.5, n)
    return fresh


def card_of(directory: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((directory / "model-card.json").read_text())
    return card


# -- the decision -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dataframe", "array", "lightgbm"])
def test_on_drifted_data_the_refitted_candidate_beats_the_champion_on_the_same_rows(
    kind: str, champions: dict[str, Path], tmp_path: Path
) -> None:
    fresh = world(200, NEW_WORLD, seed=7)
    outcome = retrain(champions[kind], fresh, out=tmp_path / "candidate")

    assert outcome.accepted, outcome.reason
    assert outcome.metric == "accuracy" and outcome.reason.startswith("accepted")
    assert outcome.candidate["accuracy"] > outcome.champion["accuracy"] + 0.15
    assert (outcome.held_out_rows, outcome.fresh_train_rows, outcome.train_rows) == (60, 140, 140)
    assert outcome.stratified
    card = card_of(tmp_path / "candidate")
    # The package's own measurement of the candidate is on the held-out rows it stores...
    assert card["metrics"] == outcome.candidate
    assert card["evaluation"] == {
        "method": "test",
        "rows": 60,
        "fraction": None,
        "file": "data/heldout.parquet",
    }
    retraining = card["retraining"]
    assert retraining["candidateMetrics"] == outcome.candidate
    assert retraining["championMetrics"] == outcome.champion
    held_file = tmp_path / "candidate" / "data" / "heldout.parquet"
    assert retraining["heldOut"] == {
        "rows": 60,
        "file": "data/heldout.parquet",
        "sha256": artifact.sha256_of(held_file),
    }
    assert retraining["champion"]["sha256"] == load_champion(champions[kind]).sha256
    assert card["dataset"]["rows"] == 140 and card["dataset"]["target"] == "label"
    # ...and the champion's recorded score is on those same rows, not others.
    champion = load_champion(champions[kind])
    held = pd.read_parquet(held_file)
    predicted = champion.model.predict(served_matrix(held, champion.kinds))
    assert outcome.champion["accuracy"] == round(float(np.mean(predicted == held["label"])), 6)
    # The candidate is itself a champion the next round can load and serve.
    again = load_champion(tmp_path / "candidate")
    assert again.sha256 == outcome.sha256
    assert again.card["inputs"] == champion.card["inputs"]
    assert json.loads(json.dumps(outcome.to_json())) == outcome.to_json()


def test_the_candidate_keeps_the_champions_hyperparameters_and_can_learn_the_old_rows_too(
    champions: dict[str, Path], tmp_path: Path
) -> None:
    champion = load_champion(champions["dataframe"], with_dataset=True)
    assert champion.dataset is not None
    outcome = retrain(
        champion, world(100, NEW_WORLD, seed=8), original=champion.dataset, out=tmp_path / "c"
    )
    assert (outcome.original_rows, outcome.fresh_train_rows) == (300, 70)
    assert outcome.train_rows == 370
    assert card_of(tmp_path / "c")["dataset"]["rows"] == 370
    refitted = load_champion(tmp_path / "c").model.estimator
    assert refitted.get_params()["logisticregression__C"] == 0.5
    assert refitted is not champion.model.estimator


def test_a_candidate_that_does_not_beat_the_champion_by_the_margin_is_rejected_and_not_packaged(
    champions: dict[str, Path], tmp_path: Path
) -> None:
    fresh = world(200, NEW_WORLD, seed=7)
    outcome = retrain(champions["dataframe"], fresh, margin=-0.9, out=tmp_path / "candidate")
    assert not outcome.accepted
    assert outcome.reason.startswith("rejected") and "at least 0.9" in outcome.reason
    assert outcome.package is None and outcome.sha256 is None
    assert not (tmp_path / "candidate").exists()
    assert outcome.to_json()["package"] is None


def test_a_candidate_fitted_on_noisy_labels_is_worse_and_rejected(tmp_path: Path) -> None:
    """The world has not changed but a labelling job went wrong: 30% of the fresh labels
    are flipped. The champion, a fully grown tree fitted on 3000 clean rows, still knows
    the concept; the candidate, the same tree grown on 700 noisy rows, memorizes the noise
    and scores lower on the same held-out rows (by ~0.13 here, over 300 rows)."""
    from sklearn.tree import DecisionTreeClassifier

    trusted = ["sklearn.tree._tree.Tree"]  # not in skops' defaults: passed through
    old = world(3000, OLD_WORLD, seed=1).drop(columns="color")
    tree = DecisionTreeClassifier(random_state=0).fit(old[["x1", "x2"]], old["label"])
    package(tree, old, "label", tmp_path / "tree", trusted=trusted)
    fresh = world(1000, OLD_WORLD, seed=9).drop(columns="color")
    flip = np.random.default_rng(0).random(len(fresh)) < 0.3
    fresh.loc[flip, "label"] = np.where(fresh.loc[flip, "label"] == "high", "low", "high")

    outcome = retrain(tmp_path / "tree", fresh, trusted=trusted, out=tmp_path / "candidate")
    assert not outcome.accepted
    assert outcome.candidate["accuracy"] < outcome.champion["accuracy"] - 0.05
    assert outcome.held_out_rows == 300
    assert "worse by" in outcome.reason and "it may not be worse" in outcome.reason
    assert not (tmp_path / "candidate").exists()
    # A margin wide enough to tolerate that loss accepts it: the margin is the only knob.
    lenient = retrain(
        tmp_path / "tree", fresh, trusted=trusted, margin=0.5, out=tmp_path / "lenient"
    )
    assert lenient.accepted and (tmp_path / "lenient" / "model.skops").is_file()


def test_a_regressor_is_judged_on_mae_by_default_and_on_rmse_when_asked(
    regressor: Path, tmp_path: Path
) -> None:
    fresh = shifted_regression(120, seed=4)
    outcome = retrain(regressor, fresh, out=tmp_path / "mae")
    assert outcome.accepted and outcome.metric == "mae"
    assert outcome.champion["mae"] > 8 and outcome.candidate["mae"] < 1
    assert set(outcome.candidate) == {"mae", "rmse"}
    assert outcome.to_json()["higherIsBetter"] is False
    by_rmse = retrain(regressor, fresh, metric="rmse", margin=-5.0, out=tmp_path / "rmse")
    assert by_rmse.metric == "rmse" and by_rmse.accepted  # better by more than 5
    too_much = retrain(regressor, fresh, metric="rmse", margin=-50.0, out=tmp_path / "no")
    assert not too_much.accepted and not (tmp_path / "no").exists()
    with pytest.raises(RetrainError, match="does not score a regression model; use mae, rmse"):
        retrain(regressor, fresh, metric="accuracy", out=tmp_path / "bad")


# -- bad input ---------------------------------------------------------------------------------


def _fewer_rows(fresh: pd.DataFrame) -> pd.DataFrame:
    return fresh.iloc[:49]


def _no_label(fresh: pd.DataFrame) -> pd.DataFrame:
    return fresh.drop(columns="label")


def _no_feature(fresh: pd.DataFrame) -> pd.DataFrame:
    return fresh.drop(columns="color")


def _one_class(fresh: pd.DataFrame) -> pd.DataFrame:
    return fresh.assign(label="high")


def _unlabelled(fresh: pd.DataFrame) -> pd.DataFrame:
    """Rows without a label do not count: 150 of 200 unlabelled leave 50, 1 short of 51."""
    return fresh.assign(label=[None] * 150 + list(fresh["label"].iloc[150:]))


def _text_feature(fresh: pd.DataFrame) -> pd.DataFrame:
    return fresh.assign(x1="far")


def _wrong_labels(fresh: pd.DataFrame) -> pd.DataFrame:
    return fresh.assign(label=fresh["x1"] * 2.5)


@pytest.mark.parametrize(
    ("spoil", "min_rows", "message"),
    [
        (_fewer_rows, 50, r"has 49 labelled row\(s\); at least 50 are needed"),
        (_unlabelled, 51, r"has 50 labelled row\(s\); at least 51"),
        (_no_label, 50, r"label column 'label' is not in the fresh data; its columns are x1"),
        (_no_feature, 50, r"lacks feature column\(s\) the champion needs: color"),
        (_one_class, 50, r"every fresh label is 'high': a classifier cannot be trained"),
        (_text_feature, 50, r"feature 'x1' is numeric for the champion"),
        (_wrong_labels, 50, r"is a class the champion knows \(high, low\)"),
    ],
)
def test_bad_fresh_data_is_refused_with_a_clear_error_and_nothing_written(
    champions: dict[str, Path],
    tmp_path: Path,
    spoil: Callable[[pd.DataFrame], pd.DataFrame],
    min_rows: int,
    message: str,
) -> None:
    fresh = spoil(world(200, NEW_WORLD, seed=7))
    with pytest.raises(RetrainError, match=message):
        retrain(champions["dataframe"], fresh, min_rows=min_rows, out=tmp_path / "candidate")
    assert list(tmp_path.iterdir()) == []


def test_string_labels_for_a_regressor_are_refused(regressor: Path, tmp_path: Path) -> None:
    fresh = shifted_regression(100, seed=5).assign(label="tall")
    with pytest.raises(RetrainError, match=r"regressor but label column 'label'.*not numbers"):
        retrain(regressor, fresh, out=tmp_path / "candidate")
    assert not (tmp_path / "candidate").exists()


def test_the_hint_names_the_champions_own_label_column(regressor: Path, tmp_path: Path) -> None:
    fresh = shifted_regression(100, seed=5).rename(columns={"label": "price"})
    with pytest.raises(RetrainError, match=r"trained with target 'y' \(--target\)"):
        retrain(regressor, fresh, out=tmp_path / "candidate")
    assert retrain(regressor, fresh, target="price", out=tmp_path / "c").accepted


def test_an_onnx_champion_cannot_be_refitted_and_says_so(tmp_path: Path) -> None:
    from modelserver.training import export_onnx

    old = world(200, OLD_WORLD, seed=1).drop(columns="color")
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    pipeline.fit(old[["x1", "x2"]].to_numpy(dtype=np.float32), old["label"])
    export_onnx(pipeline, [("x1", "numeric"), ("x2", "numeric")], tmp_path / "m.onnx")
    package(tmp_path / "m.onnx", old, "label", tmp_path / "onnx")
    with pytest.raises(RetrainError, match=r"is an ONNX graph .*cannot be refitted"):
        retrain(tmp_path / "onnx", world(100, NEW_WORLD, 2), out=tmp_path / "candidate")
    assert not (tmp_path / "candidate").exists()


def test_a_tampered_champion_is_refused_before_it_is_loaded(
    champions: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "champion"
    shutil.copytree(champions["array"], copy)
    model = copy / "model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(RetrainError, match="sha256 mismatch"):
        retrain(copy, world(100, NEW_WORLD, 2), out=tmp_path / "candidate")
    with pytest.raises(RetrainError, match=r"is not a package: no model-card\.json"):
        retrain(tmp_path, world(100, NEW_WORLD, 2), out=tmp_path / "candidate")


# -- the command -------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["retrain", *args])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads("\n".join(lines)), captured.err


def test_the_command_prints_and_writes_the_outcome_with_exit_0_or_3(
    champions: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "fresh.csv"
    world(200, NEW_WORLD, seed=7).to_csv(fresh, index=False)
    champion = str(champions["dataframe"])
    code, document, err = run_cli(
        capsys, "--champion", champion, "--data", str(fresh), "--out", str(tmp_path / "ok"),
        "--original-from-champion", "--metric", "f1",
    )  # fmt: skip
    assert code == 0, err
    assert document["accepted"] and document["metric"] == "f1_macro"
    assert document["rows"] == {"train": 440, "heldOut": 60, "freshTrain": 140, "original": 300}
    assert document["package"] == str(tmp_path / "ok" / "candidate")
    assert json.loads((tmp_path / "ok" / "outcome.json").read_text()) == document
    assert (tmp_path / "ok" / "candidate" / "model.skops").is_file()
    assert "accepted: the candidate's f1_macro" in err

    # Rejected: exit 3, and --register is not even tried (that registry is not there).
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, document, err = run_cli(
        capsys, "--champion", champion, "--data", str(fresh), "--out", str(tmp_path / "no"),
        "--margin", "-0.9", "--register", "curve", "--tracking-uri", nowhere,
    )  # fmt: skip
    assert code == 3, err
    assert not document["accepted"] and "registered" not in document
    assert document["reason"].startswith("rejected")
    assert sorted(p.name for p in (tmp_path / "no").iterdir()) == ["outcome.json"]

    # Accepted but the registry is unreachable: exit 1, the package is kept to register later.
    code, document, err = run_cli(
        capsys, "--champion", champion, "--data", str(fresh), "--out", str(tmp_path / "unreg"),
        "--register", "curve", "--tracking-uri", nowhere,
    )  # fmt: skip
    assert code == 1
    assert document["accepted"] and document["registered"] is None
    assert "unreachable" in document["error"]["message"]
    assert (tmp_path / "unreg" / "candidate" / "model-card.json").is_file()


def test_the_command_refuses_bad_input_with_exit_2_and_writes_nothing(
    champions: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "fresh.parquet"
    world(200, NEW_WORLD, seed=7).drop(columns="label").to_parquet(fresh)
    out = tmp_path / "out"
    code, document, err = run_cli(
        capsys, "--champion", str(champions["array"]), "--data", str(fresh), "--out", str(out)
    )
    assert code == 2
    assert document["error"]["kind"] == "bad-input" and not document["accepted"]
    assert "label column 'label' is not in the fresh data" in err
    assert not out.exists()

    code, document, _ = run_cli(
        capsys, "--champion", "models:/curve/latest", "--data", str(fresh), "--out", str(out)
    )
    assert (
        code == 2 and "'latest' and stage names are not supported" in document["error"]["message"]
    )

    code, document, _ = run_cli(
        capsys, "--champion", str(champions["array"]), "--records", "sqlite:///r.db",
        "--model", "curve", "--out", str(out),
    )  # fmt: skip
    assert code == 2 and "cannot read the inference records" in document["error"]["message"]
    assert not out.exists()

    code, document, _ = run_cli(
        capsys, "--champion", str(champions["array"]), "--data", str(fresh), "--out", str(out),
        "--alias", "candidate",
    )  # fmt: skip
    assert code == 2 and "--alias needs --register" in document["error"]["message"]

    out.mkdir()
    (out / "outcome.json").write_text("{}")
    code, document, _ = run_cli(
        capsys, "--champion", str(champions["array"]), "--data", str(fresh), "--out", str(out)
    )
    assert code == 2 and "is not empty" in document["error"]["message"]


def test_an_unexpected_failure_is_exit_1_with_json_on_stdout(
    champions: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelserver import retraining

    def broken(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retraining, "retrain", broken)
    fresh = tmp_path / "fresh.csv"
    world(100, NEW_WORLD, seed=7).to_csv(fresh, index=False)
    code, document, err = run_cli(
        capsys, "--champion", str(champions["array"]), "--data", str(fresh),
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 1 and document["error"]["kind"] == "failure"
    assert "No space left on device" in document["error"]["message"]
    assert "Traceback" in err and not (tmp_path / "out").exists()


def test_an_outcome_is_json_whatever_it_holds() -> None:
    outcome = RetrainOutcome(
        accepted=False,
        task="classification",
        metric="accuracy",
        margin=0.0,
        candidate={"accuracy": 0.5, "f1_macro": 0.5},
        champion={"accuracy": 0.6, "f1_macro": 0.6},
        train_rows=10,
        held_out_rows=5,
        fresh_train_rows=10,
        original_rows=0,
        stratified=False,
        reason="rejected",
        champion_source="models:/m@champion",
        champion_sha256="0" * 64,
    )
    assert json.loads(json.dumps(outcome.to_json()))["rows"]["heldOut"] == 5


def test_a_job_needs_only_args_retrain_and_the_operator_reads_its_termination_message(
    champions: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the operator's env says (rollout.retraining.job_env) is what the command
    does, and what it writes to the termination log is what the operator judges."""
    from modelrollout.rollout.observed import RetrainingJobObservation
    from modelrollout.rollout.retraining import judge

    fresh = tmp_path / "fresh.csv"
    world(200, NEW_WORLD, seed=7).to_csv(fresh, index=False)
    termination = tmp_path / "termination-log"
    env = {
        "CHAMPION": str(champions["dataframe"]), "MARGIN": "0.0", "MIN_ROWS": "50",
        "ORIGINAL": "champion", "METRIC": "f1", "OUTCOME_PATH": str(termination),
        "MODEL": "curve", "ALIAS": "candidate", "TRIGGER": "Manual", "RUN": "1",
        "DATA": str(fresh),
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(f"MODELROLLOUT_RETRAIN_{key}", value)
    monkeypatch.chdir(tmp_path)

    code, document, err = run_cli(capsys)
    assert code == 0, err
    assert document["metric"] == "f1_macro" and document["rows"]["original"] == 300
    line = termination.read_text()
    assert "\n" not in line and json.loads(line)["candidate"] == document["candidate"]
    succeeded = RetrainingJobObservation(
        "curve-retrain-1", 1, "Succeeded", exit_code=0, message=line
    )
    outcome, message, details = judge(succeeded)
    assert outcome == "Accepted" and message.startswith("accepted")
    assert details["champion"] == document["champion"]

    # The command line wins over the env; a rejection is judged as one, with its figures.
    code, document, _ = run_cli(capsys, "--margin", "-0.9")
    assert code == 3 and not document["accepted"]
    failed = RetrainingJobObservation(
        "curve-retrain-2", 2, "Failed", exit_code=3, message=termination.read_text()
    )
    outcome, message, details = judge(failed)
    assert outcome == "Rejected" and message.startswith("rejected")
    assert details["candidate"]["f1_macro"] == document["candidate"]["f1_macro"]

    # Nothing to train on: a bad-input failure the operator reports in words.
    monkeypatch.delenv("MODELROLLOUT_RETRAIN_DATA")
    code, document, _ = run_cli(capsys)
    assert code == 2 and "MODELROLLOUT_RETRAIN_RECORDS" in document["error"]["message"]
    crashed = RetrainingJobObservation(
        "curve-retrain-3", 3, "Failed", exit_code=2, message=termination.read_text()
    )
    outcome, message, _ = judge(crashed)
    assert outcome == "Failed" and "MODELROLLOUT_RETRAIN_RECORDS" in message
    assert "{" not in message

    # A variable the command cannot read is reported the same way.
    monkeypatch.setenv("MODELROLLOUT_RETRAIN_MIN_ROWS", "many")
    code, document, _ = run_cli(capsys)
    assert code == 2 and "'many'" in document["error"]["message"]
    assert "'many'" in json.loads(termination.read_text())["error"]


def test_the_termination_message_stays_whole_json_within_4096_bytes() -> None:
    from modelrollout.cli.retrain import TERMINATION_MESSAGE_LIMIT, termination_message

    document = {
        "accepted": False, "metric": "accuracy", "candidate": {"accuracy": 0.5},
        "champion": {"accuracy": 0.6}, "reason": "rejected: " + "x" * 9000,
        "error": {"kind": "failure", "message": "y" * 9000},
    }  # fmt: skip
    line = termination_message(document)
    assert len(line.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = json.loads(line)
    assert parsed["reason"].startswith("rejected: xxx") and parsed["error"].startswith("yyy")
    assert parsed["champion"] == {"accuracy": 0.6}
