"""`modelrollout review`: people label a sample of predictions.

When no downstream signal says whether a prediction was right, a person has to.
The model server (with its inference-records store) hands out a random sample
of recent unlabelled requests; this command shows them one by one and posts
each label as feedback with `"source": "human"`, or writes the sample to a CSV
file for a spreadsheet and posts the filled-in labels back. Standard library
only: it runs wherever the kubectl plugin does.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

TIMEOUT_SECONDS = 30
MAX_LIMIT = 500
EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT = 0, 1, 2
# The CSV's columns besides the features; `label` is the one people fill in.
META_COLUMNS = ("request_id", "row", "model_version", "served_at")
LABEL_COLUMN = "label"


class ReviewError(RuntimeError):
    """The server cannot be asked, or refused; the message says why."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "review",
        help="label a sample of a model's predictions by hand (needs its records store)",
        description=(
            "Fetch recent unlabelled requests at random from a model server that has the "
            "inference-records store, and post people's labels as feedback (source human): "
            "one by one on the terminal, or through a CSV file (--export, then --import)."
        ),
    )
    parser.add_argument("--url", required=True, help="a model server's base URL (any replica)")
    parser.add_argument("--model", required=True, help="the model's name in the URL path")
    parser.add_argument(
        "--limit", type=_limit, default=20, help=f"requests to review (1..{MAX_LIMIT}; 20)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--export", type=Path, metavar="FILE.csv", help="write the sample for a spreadsheet"
    )
    mode.add_argument(
        "--import",
        dest="import_path",
        type=Path,
        metavar="FILE.csv",
        help="post the filled-in 'label' column of an exported file",
    )
    parser.set_defaults(handler=run)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number from 1 to {MAX_LIMIT}")
    return value


def run(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        print(
            f"modelrollout review: --url must be http:// or https://, not {base!r}", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    model = urllib.parse.quote(args.model, safe="")
    try:
        if args.import_path is not None:
            return import_labels(base, model, args.import_path, sys.stdout)
        sample = _call("GET", f"{base}/v2/models/{model}/review?limit={args.limit}")
        if args.export is not None:
            rows = export(sample, args.export)
            print(f"wrote {rows} rows of {len(sample['requests'])} requests to {args.export}")
            return EXIT_OK
        return interactive(base, model, sample, sys.stdin, sys.stdout)
    except ReviewError as exc:
        print(f"modelrollout review: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def interactive(base: str, model: str, sample: dict[str, Any], ask: TextIO, out: TextIO) -> int:
    """Each row with its prediction; Enter confirms it, text corrects it, s skips the
    request, q stops. Each request's labels are posted as soon as they are given."""
    requests = sample["requests"]
    numeric = not sample.get("classes")
    if not requests:
        print("nothing to review: every recent request is labelled", file=out)
        return EXIT_OK
    if sample.get("classes"):
        print(f"classes: {', '.join(sample['classes'])}", file=out)
    counts = {"confirmed": 0, "corrected": 0, "skipped": 0, "refused": 0}
    for number, request in enumerate(requests, 1):
        when = f"version {request['model_version']}, {request['served_at']}"
        print(f"\n[{number}/{len(requests)}] request {request['id']} ({when})", file=out)
        labels: list[object] = []
        for row in request["rows"]:
            print("  " + ", ".join(f"{k}={v}" for k, v in row["features"].items()), file=out)
            out.write(
                f"  predicted {row['prediction']!r}; label (Enter: right, s: skip, q: quit): "
            )
            out.flush()
            answer = ask.readline()
            if answer == "" or answer.strip() == "q":  # end of input, or quit
                return _summary(counts, out)
            answer = answer.strip()
            if answer == "s":
                break
            labels.append(row["prediction"] if answer == "" else _label(answer, numeric))
            counts["confirmed" if answer == "" else "corrected"] += 1
        if len(labels) < len(request["rows"]):
            counts["skipped"] += 1
            continue
        try:
            _post(base, model, request["id"], labels)
        except ReviewError as exc:
            counts["refused"] += 1
            print(f"  not saved: {exc}", file=out)
    return _summary(counts, out)


def _summary(counts: dict[str, int], out: TextIO) -> int:
    print(
        f"\nlabelled rows: {counts['confirmed']} confirmed, {counts['corrected']} corrected; "
        f"requests skipped: {counts['skipped']}, refused: {counts['refused']}",
        file=out,
    )
    return EXIT_REFUSED if counts["refused"] else EXIT_OK


def export(sample: dict[str, Any], path: Path) -> int:
    features = list(sample["features"])
    header = [*META_COLUMNS, *features, "prediction", LABEL_COLUMN]
    written = 0
    with path.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(header)
        for request in sample["requests"]:
            for index, row in enumerate(request["rows"]):
                values = [row["features"].get(f) for f in features]
                meta = [request["id"], index, request["model_version"], request["served_at"]]
                writer.writerow([*meta, *values, row["prediction"], ""])
                written += 1
    return written


def import_labels(base: str, model: str, path: Path, out: TextIO) -> int:
    """Post every request whose rows all have a label; report the rest."""
    try:
        with path.open(newline="") as source:
            table = list(csv.DictReader(source))
    except OSError as exc:
        raise ReviewError(f"cannot read {path}: {exc.strerror}") from None
    if not table or LABEL_COLUMN not in table[0] or "request_id" not in table[0]:
        raise ReviewError(f"{path} has no '{LABEL_COLUMN}' and 'request_id' columns (--export's)")
    numeric = not _call("GET", f"{base}/v2/models/{model}")["parameters"].get("classes")
    posted = incomplete = refused = 0
    for request_id, rows in _by_request(table):
        labels = [row[LABEL_COLUMN].strip() for row in sorted(rows, key=lambda r: int(r["row"]))]
        if not all(labels):
            incomplete += 1
            continue
        try:
            _post(base, model, request_id, [_label(text, numeric) for text in labels])
            posted += 1
        except ReviewError as exc:
            refused += 1
            print(f"{request_id}: not saved: {exc}", file=out)
    print(
        f"posted {posted} requests; {incomplete} without every label; {refused} refused", file=out
    )
    return EXIT_REFUSED if refused else EXIT_OK


def _by_request(table: Iterable[dict[str, str]]) -> list[tuple[str, list[dict[str, str]]]]:
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in table:
        grouped.setdefault(row["request_id"], []).append(row)
    return list(grouped.items())


def _label(text: str, numeric: bool) -> object:
    """A regressor's label is a number; a class stays as typed (the server compares
    classes as strings)."""
    if not numeric:
        return text
    try:
        return float(text)
    except ValueError:
        raise ReviewError(f"{text!r} is not a number, and this model is a regressor") from None


def _post(base: str, model: str, request_id: str, labels: list[object]) -> None:
    body = {"id": request_id, "labels": labels, "source": "human"}
    _call("POST", f"{base}/v2/models/{model}/feedback", body)


def _call(method: str, url: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    # run() accepts only http(s) base URLs.
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise ReviewError(f"HTTP {error.code}: {_error_text(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ReviewError(f"cannot reach {url.split('/v2/')[0]}: {reason}") from None
    except ValueError:
        raise ReviewError(f"{url} did not answer JSON") from None


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["error"])
    except (ValueError, KeyError, TypeError):
        return error.reason if isinstance(error.reason, str) else "refused"
