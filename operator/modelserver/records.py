"""The inference-records store: what each replica answered, and the labels that
arrive later, in one PostgreSQL database that every replica shares.

Feedback used to be scored only by the replica that answered, from its memory,
and was lost with the pod. With a store (MODELSERVER_RECORDS_DSN), a sampled
request's rows (features as sent, the prediction, model, version, revision,
time) are written by a background thread in batches, so serving never waits on
the database; a label posted at any replica joins its prediction there; live
accuracy (or a regressor's error) is computed from the joined rows of this
revision across all replicas, so the gauge no longer depends on which pod
answered; and `modelrollout retrain --records` reads the labelled rows to train
on. Nothing here logs a feature, a prediction, a label or the DSN's password.

Three tables, joined when read (a label may arrive before its prediction's batch
is written, and neither waits for the other):

- modelserver_predictions (request_id, row_index) -> model, model_version,
  revision, features (jsonb object), prediction (jsonb), served_at
- modelserver_labels (request_id, row_index) -> label (jsonb), source, labelled_at
- modelserver_shadow_predictions (request_id, row_index, revision) -> model,
  model_version, prediction, served_at: a challenger's answers to the champion's
  shadow copies (modelserver.shadow). The request is the champion's (its row in
  modelserver_predictions holds the features), so a label posted at the champion
  joins the challenger's prediction too: the challenger's live accuracy counts
  them, which is its accuracy on the champion's own requests.

Retention is by age: the writer deletes rows older than the retention limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from modelserver.feedback import UnknownRequestError
from modelserver.inputs import InputError

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

log = logging.getLogger("modelserver.records")

# Concurrent replicas create the tables once: CREATE ... IF NOT EXISTS alone races
# in PostgreSQL's catalog, so the first one to take this lock creates them.
SCHEMA_LOCK = 0x6D6F64656C  # "model"
SCHEMA = """
CREATE TABLE IF NOT EXISTS modelserver_predictions (
    request_id text NOT NULL,
    row_index integer NOT NULL,
    model text NOT NULL,
    model_version text NOT NULL,
    revision text NOT NULL DEFAULT '',
    features jsonb NOT NULL,
    prediction jsonb NOT NULL,
    served_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, row_index)
);
CREATE INDEX IF NOT EXISTS modelserver_predictions_model_served
    ON modelserver_predictions (model, served_at);
CREATE TABLE IF NOT EXISTS modelserver_labels (
    request_id text NOT NULL,
    row_index integer NOT NULL,
    label jsonb NOT NULL,
    source text NOT NULL DEFAULT 'client',
    labelled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, row_index)
);
CREATE INDEX IF NOT EXISTS modelserver_labels_labelled ON modelserver_labels (labelled_at);
CREATE TABLE IF NOT EXISTS modelserver_shadow_predictions (
    request_id text NOT NULL,
    row_index integer NOT NULL,
    model text NOT NULL,
    model_version text NOT NULL,
    revision text NOT NULL DEFAULT '',
    prediction jsonb NOT NULL,
    served_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, row_index, revision)
);
CREATE INDEX IF NOT EXISTS modelserver_shadow_predictions_served
    ON modelserver_shadow_predictions (served_at);
"""
# Each table's rows older than the retention limit (seconds).
PURGES = (
    "DELETE FROM modelserver_predictions WHERE served_at < now() - make_interval(secs => %s)",
    "DELETE FROM modelserver_shadow_predictions"
    " WHERE served_at < now() - make_interval(secs => %s)",
    "DELETE FROM modelserver_labels WHERE labelled_at < now() - make_interval(secs => %s)",
)
CONNECT_TIMEOUT_SECONDS = 5
# Requests one review sample returns at most.
REVIEW_LIMIT = 500
# Rows per INSERT batch: one round trip for hundreds of requests.
BATCH_ROWS = 500
# Seconds between purges of rows past the retention limit.
PURGE_INTERVAL_SECONDS = 600.0
# How long a failed write waits before the next try, at most.
MAX_BACKOFF_SECONDS = 30.0


class RecordStoreError(RuntimeError):
    """The store cannot be reached or refused a statement; the message has no secret.
    `transient`: the connection failed (worth retrying), not the statement."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class AlreadyLabelledError(InputError):
    """Feedback for rows that already carry a label: a label counts once."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request {request_id!r} is already labelled; a label counts once",
            status=409,
            kind="already_labelled",
        )


@dataclass(frozen=True)
class Identity:
    """Whose rows these are: the live window is this revision's rows only."""

    model: str
    model_version: str
    revision: str = ""


@dataclass(frozen=True)
class LiveWindow:
    """The joined labelled rows of one revision, newest first, at most `window`."""

    rows: int
    accuracy: float | None = None
    mae: float | None = None
    rmse: float | None = None


def sampled(request_id: str, rate: float) -> bool:
    """Whether a request is recorded: a hash of its id, so every replica agrees and
    feedback for an unrecorded request can say so."""
    if rate >= 1.0:
        return True
    return zlib.crc32(request_id.encode()) / 2**32 < rate


def display(dsn: str) -> str:
    """Where the store is, for messages: host, port and database, never a password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "the records store (unparsable DSN)"
    host = parts.get("host") or "localhost"
    return f"postgresql://{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class RecordStore:
    """Statements on the store, one connection, serialized: for the writer thread,
    the feedback path (in worker threads) and `retrain --records`."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.where = display(dsn)
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        import psycopg

        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = psycopg.connect(
                        self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                    )
                with self._connection.cursor() as cursor:
                    yield cursor
            except psycopg.errors.UniqueViolation:
                raise
            except psycopg.Error as exc:
                broken = self._connection is None or self._connection.broken
                if broken:
                    self._connection = None
                raise RecordStoreError(
                    f"{self.where}: {_first_line(exc)}",
                    transient=broken or isinstance(exc, psycopg.OperationalError),
                ) from None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def create_schema(self) -> None:
        with self._cursor() as cursor, cursor.connection.transaction():
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            cursor.execute(SCHEMA)

    def write(
        self, rows: Sequence[tuple[Any, ...]], shadow_rows: Sequence[tuple[Any, ...]] = ()
    ) -> None:
        """Insert prediction rows (request_id, row_index, model, model_version, revision,
        features json, prediction json) and a challenger's rows for shadow copies (the
        same without features); a row already there is kept as it was."""
        with self._cursor() as cursor, cursor.connection.transaction():
            if rows:
                cursor.executemany(
                    "INSERT INTO modelserver_predictions (request_id, row_index, model,"
                    " model_version, revision, features, prediction)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    rows,
                )
            if shadow_rows:
                cursor.executemany(
                    "INSERT INTO modelserver_shadow_predictions (request_id, row_index, model,"
                    " model_version, revision, prediction) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    shadow_rows,
                )

    def predictions(self, request_id: str) -> tuple[object, ...] | None:
        """The stored predictions of a request, in row order; None if it has none."""
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT prediction FROM modelserver_predictions WHERE request_id = %s"
                " ORDER BY row_index",
                (request_id,),
            )
            found = tuple(row[0] for row in cursor.fetchall())
        return found or None

    def add_labels(self, request_id: str, labels: Sequence[object], source: str) -> None:
        """One label per row, all or none; AlreadyLabelledError if any row has one."""
        import psycopg

        try:
            with self._cursor() as cursor, cursor.connection.transaction():
                cursor.executemany(
                    "INSERT INTO modelserver_labels (request_id, row_index, label, source)"
                    " VALUES (%s, %s, %s, %s)",
                    [(request_id, i, json.dumps(label), source) for i, label in enumerate(labels)],
                )
        except psycopg.errors.UniqueViolation:
            raise AlreadyLabelledError(request_id) from None

    def live(self, identity: Identity, window: int, regression: bool) -> LiveWindow:
        """Accuracy (or MAE and RMSE) over the newest `window` labelled rows of a revision:
        the requests it served, and the champion's requests it answered as a challenger."""
        whose = (identity.model, identity.model_version, identity.revision)
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT p.prediction, l.label FROM modelserver_labels l JOIN ("
                " SELECT request_id, row_index, prediction FROM modelserver_predictions"
                " WHERE model = %s AND model_version = %s AND revision = %s"
                " UNION ALL"
                " SELECT request_id, row_index, prediction FROM modelserver_shadow_predictions"
                " WHERE model = %s AND model_version = %s AND revision = %s"
                ") p USING (request_id, row_index)"
                " ORDER BY l.labelled_at DESC LIMIT %s",
                (*whose, *whose, window),
            )
            pairs = cursor.fetchall()
        if not pairs:
            return LiveWindow(0)
        if not regression:
            # Compared as strings, as the in-memory tracker does: 1 and "1" are one class.
            correct = sum(str(guess) == str(truth) for guess, truth in pairs)
            return LiveWindow(len(pairs), accuracy=correct / len(pairs))
        errors = [abs(float(truth) - float(guess)) for guess, truth in pairs]
        return LiveWindow(
            len(pairs),
            mae=math.fsum(errors) / len(errors),
            rmse=math.sqrt(math.fsum(e * e for e in errors) / len(errors)),
        )

    def review_sample(self, model: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` recent requests of `model` with no label yet, at random, for a
        person to label: each with its rows' features and predictions."""
        with self._cursor() as cursor:
            cursor.execute(
                """
                WITH unlabelled AS (
                    SELECT p.request_id FROM modelserver_predictions p
                    WHERE p.model = %s AND NOT EXISTS (
                        SELECT 1 FROM modelserver_labels l
                        WHERE l.request_id = p.request_id AND l.row_index = p.row_index)
                    GROUP BY p.request_id
                    ORDER BY max(p.served_at) DESC LIMIT 5000
                ), chosen AS (
                    SELECT request_id FROM unlabelled ORDER BY random() LIMIT %s
                )
                SELECT p.request_id, p.model_version, p.served_at, p.features, p.prediction
                FROM modelserver_predictions p JOIN chosen USING (request_id)
                ORDER BY p.request_id, p.row_index
                """,
                (model, limit),
            )
            found = cursor.fetchall()
        requests: dict[str, dict[str, Any]] = {}
        for request_id, version, served_at, features, prediction in found:
            entry = requests.setdefault(
                request_id,
                {
                    "id": request_id,
                    "model_version": version,
                    "served_at": served_at.isoformat(),
                    "rows": [],
                },
            )
            entry["rows"].append({"features": features, "prediction": prediction})
        return list(requests.values())

    def purge(self, older_than_seconds: float) -> int:
        """Delete rows older than the retention limit; how many went."""
        deleted = 0
        with self._cursor() as cursor:
            for statement in PURGES:
                cursor.execute(statement, (older_than_seconds,))
                deleted += cursor.rowcount
        return deleted

    def labelled(self, model: str, *, since: datetime | None = None) -> pd.DataFrame:
        """Every labelled row of `model` (served from `since` on): one column per
        feature as sent, `label`, and model_version, prediction, request_id, served_at."""
        import pandas as pd

        with self._cursor() as cursor:
            cursor.execute(
                "SELECT p.features, l.label, p.model_version, p.prediction, p.request_id,"
                " p.served_at FROM modelserver_predictions p JOIN modelserver_labels l"
                " USING (request_id, row_index)"
                " WHERE p.model = %s AND (%s::timestamptz IS NULL OR p.served_at >= %s)"
                " ORDER BY p.served_at, p.request_id, p.row_index",
                (model, since, since),
            )
            found = cursor.fetchall()
        records = [
            {
                **features,
                "label": label,
                "model_version": version,
                "prediction": prediction,
                "request_id": request_id,
                "served_at": served_at,
            }
            for features, label, version, prediction, request_id, served_at in found
        ]
        return pd.DataFrame.from_records(records)


class Answered(NamedTuple):
    """One answered request waiting to be written; `shadow`: a champion's copy, served
    by this revision as the challenger."""

    request_id: str
    matrix: npt.NDArray[Any]
    predictions: list[object]
    shadow: bool = False


class RecordWriter:
    """The background side: writes sampled requests in batches, keeps the live window
    of this revision fresh, and purges old rows. Serving only enqueues; a full
    queue (the store down or slow) drops requests and counts them, never blocks."""

    def __init__(
        self,
        store: RecordStore,
        identity: Identity,
        *,
        features: Sequence[str],
        regression: bool,
        queue_rows: int,
        flush_seconds: float,
        window: int,
        min_samples: int,
        retention_seconds: float,
        on_written: Any = None,
        on_dropped: Any = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self._features = list(features)
        self._regression = regression
        self._queue: queue.Queue[Answered] = queue.Queue()
        self._queued_rows = 0
        self._queue_rows = queue_rows
        self._count_lock = threading.Lock()
        self._flush_seconds = flush_seconds
        self._window = window
        self._min_samples = min_samples
        self._retention = retention_seconds
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._stop = threading.Event()
        self.live = LiveWindow(0)
        self.healthy = False
        self._thread = threading.Thread(target=self._run, name="modelserver-records", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (within `timeout`), then stop."""
        self._stop.set()
        self._thread.join(timeout)
        self.store.close()

    def submit(
        self,
        request_id: str,
        matrix: npt.NDArray[Any],
        predictions: list[object],
        shadow: bool = False,
    ) -> bool:
        """Queue one answered request; False (and counted) when the queue is full."""
        rows = len(predictions)
        with self._count_lock:
            if self._queued_rows + rows > self._queue_rows:
                self._on_dropped(rows)
                return False
            self._queued_rows += rows
        self._queue.put(Answered(request_id, matrix, predictions, shadow))
        return True

    def ready(self) -> LiveWindow:
        """The live window if it holds at least min_samples rows, else an empty one."""
        live = self.live
        return live if live.rows >= max(self._min_samples, 1) else LiveWindow(live.rows)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 1.0
        next_live = next_purge = 0.0
        batch: list[Answered] = []
        while True:
            stopping = self._stop.is_set()
            batch.extend(self._take(0.0 if stopping else self._flush_seconds, len(batch)))
            try:
                if not self.healthy:
                    self.store.create_schema()
                    self.healthy = True
                    log.info("records store ready", extra={"store": self.store.where})
                if batch:
                    rows, shadow_rows = self._rows(batch)
                    self.store.write(rows, shadow_rows)
                    written = len(rows) + len(shadow_rows)
                    self._on_written(written)
                    self._done(written)
                    batch = []
                now = time.monotonic()
                if now >= next_live:
                    self.live = self.store.live(self.identity, self._window, self._regression)
                    next_live = now + self._flush_seconds
                if now >= next_purge and self._retention > 0:
                    purged = self.store.purge(self._retention)
                    if purged:
                        log.info("records purged", extra={"rows": purged})
                    next_purge = now + PURGE_INTERVAL_SECONDS
                backoff = 1.0
            except RecordStoreError as exc:
                if not exc.transient:
                    # The statement itself was refused: retrying cannot help.
                    log.warning("records store refused a statement: %s", exc)
                    self._drop(batch)
                    batch = []
                    if stopping:
                        return
                    self._stop.wait(1.0)
                    continue
                if self.healthy or backoff == 1.0:
                    log.warning("records store unavailable: %s", exc)
                self.healthy = False
                if stopping:
                    self._drop(batch)
                    return
                # The batch is kept and tried again; meanwhile the queue fills and
                # then drops (counted), so memory stays bounded.
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if stopping and self._queue.empty():
                return

    def _take(self, wait: float, held: int) -> list[Answered]:
        taken = []
        deadline = time.monotonic() + wait
        rows = held
        while rows < BATCH_ROWS:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            taken.append(item)
            rows += len(item.predictions)
        return taken

    def _rows(
        self, batch: Sequence[Answered]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The rows of modelserver_predictions, and of modelserver_shadow_predictions."""
        identity = self.identity
        whose = (identity.model, identity.model_version, identity.revision)
        rows: list[tuple[Any, ...]] = []
        shadow_rows: list[tuple[Any, ...]] = []
        for request_id, matrix, predictions, shadow in batch:
            if shadow:
                # The features are the champion's row's; only the answer is this revision's.
                shadow_rows.extend(
                    (request_id, index, *whose, json.dumps(_json_value(prediction)))
                    for index, prediction in enumerate(predictions)
                )
                continue
            for index, (values, prediction) in enumerate(zip(matrix, predictions, strict=True)):
                features = dict(zip(self._features, map(_json_value, values), strict=True))
                rows.append(
                    (
                        request_id,
                        index,
                        *whose,
                        json.dumps(features),
                        json.dumps(_json_value(prediction)),
                    )
                )
        return rows, shadow_rows

    def _drop(self, batch: Sequence[Answered]) -> None:
        rows = sum(len(answered.predictions) for answered in batch)
        if rows:
            self._on_dropped(rows)
        self._done(rows)

    def _done(self, rows: int) -> None:
        with self._count_lock:
            self._queued_rows -= rows


def _json_value(value: Any) -> Any:
    """A feature or prediction as JSON: numpy scalars as Python ones, NaN as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "")  # jsonb cannot hold NUL
    return value


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


__all__ = [
    "AlreadyLabelledError",
    "Identity",
    "LiveWindow",
    "RecordStore",
    "RecordStoreError",
    "RecordWriter",
    "UnknownRequestError",
    "sampled",
]
