"""The inference-records store, end to end: `modelrollout serve` replicas sharing a
real PostgreSQL. A label posted at any replica joins the prediction another one
made, live accuracy is the same on every replica of a revision, people label a
review sample, old rows are purged, and a store that is down never stops serving
and never loses a label silently."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from ms_helpers import CLI, Server, http, label, metric_samples, running_server, v2_body
from test_ms_retraining import NEW_WORLD, champion_of, run_cli, world

from modelrollout.devenv.ports import free_port
from modelserver.datasets import load_dataset
from modelserver.records import RecordStore
from modelserver.retraining import RECORD_COLUMNS
from support.waiting import wait_for

pytestmark = pytest.mark.integration

STORE_ENV = {
    "MODELSERVER_RECORDS_FLUSH_SECONDS": "0.2",
    "MODELSERVER_DRIFT_INTERVAL_SECONDS": "0.2",
    "MODELSERVER_FEEDBACK_MIN_SAMPLES": "10",
}


@pytest.fixture(scope="module")
def wine_rows() -> list[tuple[dict[str, float], str]]:
    """Rows of the wine table with their true class, as a client would label them."""
    data = load_dataset("wine")
    names = list(data.feature_names)
    return [
        ({n: float(v) for n, v in zip(names, x, strict=True)}, str(y))
        for x, y in zip(data.X[:60], data.y[:60], strict=True)
    ]


@pytest.fixture
def replicas(
    models: dict[str, dict[str, Any]], tmp_path: Path, records_dsn: str, request: Any
) -> Iterator[tuple[Server, Server]]:
    """Two replicas of one revision of a model named after the test."""
    name = request.node.name.replace("_", "-")[5:40]
    env = {"MODELSERVER_RECORDS_DSN": records_dsn, **STORE_ENV}
    with (
        running_server(models["wine-improved"], tmp_path, name=name, **env) as a,
        running_server(models["wine-improved"], tmp_path, name=name, **env) as b,
    ):
        a.name = b.name = name  # type: ignore[attr-defined]
        yield a, b


def infer(server: Server, row: dict[str, float]) -> tuple[str, str]:
    name = server.name  # type: ignore[attr-defined]
    status, body, _ = http("POST", f"{server.url}/v2/models/{name}/infer", v2_body(row))
    assert status == 200, body
    return body["id"], str(body["outputs"][0]["data"][0])


def feedback(server: Server, request_id: str, labels: list[Any], **extra: Any) -> Any:
    name = server.name  # type: ignore[attr-defined]
    body = json.dumps({"id": request_id, "labels": labels, **extra})
    return http("POST", f"{server.url}/v2/models/{name}/feedback", body)


def written(server: Server) -> float:
    samples = metric_samples(server.metrics(), "modelserver_records_total")
    return label(samples, outcome="written") or 0.0


def accuracy(server: Server) -> float | None:
    return label(metric_samples(server.metrics(), "modelserver_feedback_accuracy"))


def test_a_label_posted_at_any_replica_joins_and_every_replica_reports_one_accuracy(
    replicas: tuple[Server, Server], wine_rows: list[tuple[dict[str, float], str]]
) -> None:
    a, b = replicas
    served = []  # (answering replica, the other one, id, prediction, truth)
    for i, (row, truth) in enumerate(wine_rows):
        first, other = (a, b) if i % 2 == 0 else (b, a)
        request_id, predicted = infer(first, row)
        served.append((first, other, request_id, predicted, truth))
    wait_for(lambda: written(a) + written(b) >= len(served), timeout=30, what="rows written")

    correct = 0
    for _, other, request_id, predicted, truth in served:
        status, body, _ = feedback(other, request_id, [truth])  # the replica that did not answer
        assert status == 200, body
        assert body == {"id": request_id, "correct": int(predicted == truth),
                        "incorrect": int(predicted != truth)}  # fmt: skip
        correct += predicted == truth
    expected = correct / len(served)

    # Both replicas report the joined window of the revision, not their own half.
    wait_for(
        lambda: accuracy(a) == pytest.approx(expected) and accuracy(b) == pytest.approx(expected),
        timeout=30,
        what=f"both replicas to report accuracy {expected}",
    )

    # A label counts once, wherever it is posted again.
    status, body, _ = feedback(a, served[1][2], [served[1][4]])
    assert status == 409 and "already labelled" in body["error"]
    status, body, _ = feedback(b, "never-served-1", ["1"])
    assert status == 404 and "no prediction recorded" in body["error"]


def test_people_label_a_review_sample_of_unlabelled_requests(
    replicas: tuple[Server, Server], wine_rows: list[tuple[dict[str, float], str]]
) -> None:
    a, b = replicas
    name = a.name  # type: ignore[attr-defined]
    ids = [infer(a, row)[0] for row, _ in wine_rows[:5]]
    labelled_by_client = ids[0]
    wait_for(lambda: written(a) >= 5, timeout=30, what="rows written")
    assert feedback(a, labelled_by_client, [wine_rows[0][1]])[0] == 200

    status, sample, _ = http("GET", f"{b.url}/v2/models/{name}/review?limit=3")
    assert status == 200, sample
    assert sample["features"] == list(wine_rows[0][0]) and len(sample["requests"]) == 3
    for entry in sample["requests"]:
        assert entry["id"] in ids and entry["id"] != labelled_by_client
        (row,) = entry["rows"]
        assert set(row["features"]) == set(wine_rows[0][0]) and "prediction" in row
        assert feedback(b, entry["id"], [row["prediction"]], source="human")[0] == 200

    status, rest, _ = http("GET", f"{a.url}/v2/models/{name}/review?limit=50")
    assert status == 200
    reviewed = {e["id"] for e in sample["requests"]}
    assert {e["id"] for e in rest["requests"]} == set(ids) - reviewed - {labelled_by_client}

    for bad in ("0", "abc", "100000"):
        status, body, _ = http("GET", f"{a.url}/v2/models/{name}/review?limit={bad}")
        assert status == 400 and "'limit'" in body["error"]
    status, body, _ = feedback(a, ids[-1], ["1"], source="robot")
    assert status == 400 and "'source'" in body["error"]


def test_a_store_that_is_down_never_stops_serving_and_never_loses_a_label_silently(
    models: dict[str, dict[str, Any]], tmp_path: Path, wine_rows: list[tuple[dict[str, float], str]]
) -> None:
    # Nothing listens on this loopback port; the password must never reach a log.
    dsn = f"postgresql://modelrollout:s3cret-pw@127.0.0.1:{free_port()}/records"
    env = {"MODELSERVER_RECORDS_DSN": dsn, "MODELSERVER_RECORDS_QUEUE_ROWS": "4", **STORE_ENV}
    with running_server(models["wine-improved"], tmp_path, name="down", **env) as server:
        server.name = "down"  # type: ignore[attr-defined]
        ids = [infer(server, row)[0] for row, _ in wine_rows[:10]]  # all answered
        samples = metric_samples(server.metrics(), "modelserver_records_total")
        assert label(samples, outcome="dropped") == 6  # past the queue's 4 rows, counted
        # The replica that answered still knows the prediction, but the label cannot be
        # saved: 503, so the client keeps it and retries.
        status, body, _ = feedback(server, ids[0], [wine_rows[0][1]])
        assert status == 503 and "records store is unavailable" in body["error"]
        assert "s3cret-pw" not in body["error"]
        status, body, _ = http("GET", f"{server.url}/v2/models/down/review")
        assert status == 503
        # The writer keeps retrying and says why, once, whatever the traffic.
        wait_for(
            lambda: "records store unavailable" in server.log.read_text(),
            timeout=10,
            what="the writer to report the store down",
        )
    logs = server.log.read_text()
    assert logs.count("records store unavailable") == 1
    assert "s3cret-pw" not in logs


def test_without_a_store_review_says_what_is_missing(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    with running_server(models["wine-improved"], tmp_path, name="alone") as server:
        status, body, _ = http("GET", f"{server.url}/v2/models/alone/review")
    assert status == 409 and "MODELSERVER_RECORDS_DSN" in body["error"]


def test_rows_past_the_retention_limit_are_purged(records_dsn: str) -> None:
    store = RecordStore(records_dsn)
    store.create_schema()
    store.write([(f"old-{i}", 0, "purge", "1", "", "{}", '"a"') for i in range(3)])
    store.write([("new-1", 0, "purge", "1", "", "{}", '"a"')])
    # A challenger's answer to a shadow copy of old-0 goes with it.
    store.write([], [("old-0", 0, "purge", "2", "challenger", '"b"')])
    store.add_labels("old-0", ["a"], "client")
    with psycopg.connect(records_dsn, autocommit=True) as connection:
        for table in ("modelserver_predictions", "modelserver_shadow_predictions"):
            connection.execute(
                f"UPDATE {table} SET served_at = now() - interval '2 days'"
                " WHERE request_id LIKE 'old-%'"
            )
        connection.execute(
            "UPDATE modelserver_labels SET labelled_at = now() - interval '2 days'"
            " WHERE request_id = 'old-0'"
        )
    assert store.purge(24 * 3600) == 5  # three predictions, a challenger's, one label
    assert store.predictions("old-1") is None and store.predictions("new-1") == ("a",)
    store.close()


def test_fresh_rows_can_come_from_the_inference_records_store(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    records_dsn: str,
) -> None:
    """Served rows and their later labels in the real store (PostgreSQL), as the model
    servers write them; `--records` trains on the joined, labelled ones of one model
    served since `--since`, without the columns that describe the request."""
    champion = str(champion_of("dataframe", tmp_path / "champion"))
    rows = world(260, NEW_WORLD, seed=7)
    features = ["x1", "x2", "color"]
    store = RecordStore(records_dsn)
    store.create_schema()
    store.write(
        [
            (f"curve-{i}", 0, "curve", "1", "", json.dumps(row[features].to_dict()), '"high"')
            for i, row in rows.iterrows()
        ]
        # Another model's rows in the same store are not this model's training data.
        + [("other-1", 0, "other", "1", "", json.dumps({"x1": 1.0}), '"low"')]
    )
    for i, row in rows.iloc[:200].iterrows():  # 60 rows are served but never labelled
        store.add_labels(f"curve-{i}", [row["label"]], "client")
    store.add_labels("other-1", ["low"], "client")
    store.close()

    code, document, err = run_cli(
        capsys, "--champion", champion, "--records", records_dsn,
        "--model", "curve", "--since", "2026-01-01T00:00:00+00:00", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 0, err
    assert document["rows"]["heldOut"] == 60 and document["rows"]["freshTrain"] == 140
    stored = pd.read_parquet(tmp_path / "o" / "candidate" / "data" / "train.parquet")
    assert not set(RECORD_COLUMNS) & set(stored.columns)
    assert list(stored.columns) == ["x1", "x2", "color", "label"]

    # Nothing was served after --since: said plainly.
    code, document, _ = run_cli(
        capsys, "--champion", champion, "--records", records_dsn,
        "--model", "curve", "--since", "2999-01-01T00:00:00+00:00", "--out", str(tmp_path / "p"),
    )  # fmt: skip
    assert (
        code == 2
        and "no labelled rows of model 'curve' served since 2999" in (document["error"]["message"])
    )


def test_modelrollout_review_posts_peoples_labels_from_the_terminal_and_from_a_csv(
    replicas: tuple[Server, Server],
    wine_rows: list[tuple[dict[str, float], str]],
    tmp_path: Path,
    records_dsn: str,
) -> None:
    a, b = replicas
    name = a.name  # type: ignore[attr-defined]
    served = {infer(a, row)[0]: truth for row, truth in wine_rows[:6]}
    wait_for(lambda: written(a) >= 6, timeout=30, what="rows written")
    review = [CLI, "review", "--url", b.url, "--model", name]

    # On the terminal: confirm the first, correct the second, skip the third, stop.
    answers = "\nclass_x\ns\nq\n"
    done = subprocess.run([*review, "--limit", "4"], input=answers, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 confirmed, 1 corrected; requests skipped: 1" in done.stdout

    # Through a spreadsheet: the rest are exported, labelled and imported.
    sheet = tmp_path / "sample.csv"
    done = subprocess.run([*review, "--limit", "50", "--export", str(sheet)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(sheet, dtype={"label": "string"})
    assert len(table) == 4 and set(table["request_id"]) <= set(served)  # 6 minus the 2 labelled
    table["label"] = [served[i] for i in table["request_id"]]
    table.loc[table.index[-1], "label"] = pd.NA  # one left unlabelled
    table.to_csv(sheet, index=False)
    done = subprocess.run([*review, "--import", str(sheet)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "posted 3 requests; 1 without every label; 0 refused" in done.stdout

    # Importing again: the server refuses each (a label counts once); exit 1 says so.
    done = subprocess.run([*review, "--import", str(sheet)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1 and "already labelled" in done.stdout
    with psycopg.connect(records_dsn) as connection:
        sources = connection.execute(
            "SELECT source, count(*) FROM modelserver_labels WHERE request_id = ANY(%s)"
            " GROUP BY source",
            (list(served),),
        ).fetchall()
    assert dict(sources) == {"human": 5}


def test_a_regressors_live_error_is_computed_from_the_joined_rows(records_dsn: str) -> None:
    """Live MAE and RMSE of one revision: its labelled rows only, whoever answered."""
    from modelserver.records import Identity

    store = RecordStore(records_dsn)
    store.create_schema()
    predicted = {"r-1": 10.0, "r-2": 20.0, "r-3": 30.0}
    store.write(
        [(i, 0, "curve", "1", "abc", "{}", json.dumps(p)) for i, p in predicted.items()]
        # Another revision's row, wildly off, is not this revision's error.
        + [("other-rev", 0, "curve", "1", "def", "{}", "0.0")]
    )
    for request_id, truth in (("r-1", 12.0), ("r-2", 16.0), ("other-rev", 1000.0)):
        store.add_labels(request_id, [truth], "client")
    live = store.live(Identity("curve", "1", "abc"), window=100, regression=True)
    assert live.rows == 2 and live.accuracy is None  # r-3 has no label yet
    assert live.mae == pytest.approx(3.0) and live.rmse == pytest.approx((10.0) ** 0.5)
    store.close()
