"""`modelrollout retrain`: the retraining Job's program (modelserver.retraining).

Refits the champion's pipeline on fresh labelled rows, scores candidate and champion
on the same held-out fresh rows, and packages (and with --register, registers and
moves --alias to) the candidate only when it is not worse by more than --margin
(README: "Retraining: `modelrollout retrain`").

stdout is one JSON object, the outcome (also written to DIR/outcome.json once a
decision was made), so the Job's log is the result; progress, mlflow's chatter and
errors go to stderr. With --outcome-path (a Job: /dev/termination-log) a compact
one-line copy, at most 4096 bytes (the kubelet's limit), is written there too, so the
operator reads the outcome from the pod's status. Every training flag not given on
the command line is read from the MODELROLLOUT_RETRAIN_* env the operator sets in
the Job (ENV_DEFAULTS), so a Job's container needs only `args: [retrain]` and where
the fresh rows are (MODELROLLOUT_RETRAIN_RECORDS or MODELROLLOUT_RETRAIN_DATA).
Exit codes, for whatever reads the Job's status:

    0  accepted (and registered, with --register)
    3  rejected: the candidate was worse than the champion by more than --margin
    2  bad input: nothing written (too few rows, a missing label or feature, one
       class, labels of the wrong kind, an ONNX champion, an existing DIR, ...)
    1  any other failure: the champion could not be fetched, or registering failed
       (the accepted package stays in DIR/candidate: `modelrollout register` it)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelrollout.cli.control import DEFAULT_WAIT_SECONDS, control
from modelrollout.cli.extras import modelserver_unavailable
from modelrollout.cli.kube import add_target_arguments
from modelrollout.cli.package import _fraction
from modelrollout.cli.register import add_registry_arguments

if TYPE_CHECKING:
    import pandas as pd

EXIT_ACCEPTED, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REJECTED = 0, 1, 2, 3
OUTCOME_FILE = "outcome.json"
PACKAGE_DIR = "candidate"
# A container's termination message is cut at 4096 bytes; ours must stay whole JSON.
TERMINATION_MESSAGE_LIMIT = 4096
TEXT_LIMIT = 1200  # of the reason and the error each, within that
ENV_PREFIX = "MODELROLLOUT_RETRAIN_"
# The flag (argparse dest) each MODELROLLOUT_RETRAIN_* variable fills when not given;
# the operator sets the first ones (rollout.retraining.job_env), the user's Job
# template the last two.
ENV_DEFAULTS = {
    "champion": "CHAMPION",
    "register": "REGISTERED_NAME",
    "alias": "ALIAS",
    "margin": "MARGIN",
    "min_rows": "MIN_ROWS",
    "metric": "METRIC",
    "dataset": "DATASET",
    "model": "MODEL",
    "since": "SINCE",
    "outcome_path": "OUTCOME_PATH",
    "records": "RECORDS",
    "data": "DATA",
}
DEFAULT_MARGIN, DEFAULT_MIN_ROWS = 0.0, 50


def _since(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="refit the champion on fresh labelled rows; keep the candidate only if not worse",
        description=(
            "Fit a clone of the champion's pipeline (same hyperparameters) on fresh labelled "
            "rows, score candidate and champion on the same held-out fresh rows, and package "
            "the candidate into DIR/candidate (registering it with --register) only when it "
            "is not worse than the champion by more than --margin. Prints the outcome as "
            "JSON and writes DIR/outcome.json. Exit 0 accepted, 3 rejected, 2 bad input, "
            "1 other failure."
        ),
    )
    # `retrain NAME`: ask the operator to start a run (spec.retraining), as the other
    # controls do; without NAME this command is the training program a Job runs.
    parser.add_argument(
        "name", nargs="?", help="a ModelDeployment: ask its operator to start a retraining run"
    )
    add_target_arguments(parser, name=False)
    parser.add_argument(
        "--dataset", default=None, metavar="VERSION",
        help=(
            "with NAME: train on this registry version's training set, not the champion's; "
            "training: that version as models:/NAME/VERSION (or a package directory)"
        ),
    )  # fmt: skip
    parser.add_argument("--no-wait", action="store_true", help="with NAME: do not wait")
    parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT_SECONDS)
    parser.add_argument(
        "--champion",
        help="the serving model: a package directory, models:/NAME/VERSION or models:/NAME@ALIAS",
    )
    fresh = parser.add_mutually_exclusive_group()
    fresh.add_argument("--data", type=Path, help="fresh labelled rows (.csv, .parquet)")
    fresh.add_argument(
        "--records",
        metavar="DSN",
        help="read the fresh labelled rows from the inference-records store instead",
    )
    parser.add_argument("--model", help="with --records: the model whose records to read")
    parser.add_argument(
        "--since", type=_since, help="with --records: only rows served from this ISO time on"
    )
    parser.add_argument("--target", default="label", help="the label column (default: label)")
    original = parser.add_mutually_exclusive_group()
    original.add_argument(
        "--original", type=Path, help="also train on these rows (.csv, .parquet), e.g. the old set"
    )
    original.add_argument(
        "--original-from-champion",
        action="store_true",
        help="also train on the dataset stored in the champion's package (data/<file>)",
    )
    parser.add_argument(
        "--holdout",
        type=_fraction,
        default=0.3,
        help="share of the fresh rows held out to judge both models (default 0.3)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        help="how much worse than the champion the candidate may be (negative: must beat it; "
        "default 0)",
    )
    parser.add_argument(
        "--metric",
        choices=("accuracy", "f1", "mae", "rmse"),
        help="the decision metric (default: accuracy for a classifier, mae for a regressor)",
    )
    parser.add_argument("--min-rows", type=int, help="fewest fresh labelled rows (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="the train/held-out split's seed")
    parser.add_argument(
        "--trusted",
        action="append",
        default=[],
        metavar="TYPE",
        help="a type the champion's skops file may contain beyond skops' defaults; repeatable",
    )
    parser.add_argument(
        "--register", metavar="NAME", help="register an accepted candidate as a version of NAME"
    )
    add_registry_arguments(parser)
    parser.add_argument(
        "--out", type=Path, help="new directory: outcome.json, candidate/ (default: a new temp one)"
    )
    parser.add_argument(
        "--outcome-path",
        type=Path,
        help="also write the outcome as one line of JSON here (a Job: /dev/termination-log)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.name is not None:
        training = [
            f for f in ("champion", "data", "records", "out", "register") if getattr(args, f)
        ]
        if training:
            flags = ", ".join(f"--{f}" for f in training)
            return _fail(EXIT_BAD_INPUT, f"NAME asks the operator for a run; {flags} train here")
        args.action = "retrain"
        return control(args)
    try:
        _defaults_from_env(args, os.environ)
    except (ValueError, argparse.ArgumentTypeError) as error:
        # --outcome-path is filled first, so even a bad variable reaches the operator.
        code, document = _failure(EXIT_BAD_INPUT, str(error))
    else:
        code, document = _train(args)
    if args.outcome_path is not None:
        _write_termination_message(args.outcome_path, document)
    json.dump(document, sys.stdout, indent=1)
    print()
    return code


def _defaults_from_env(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Fill what the command line left out from MODELROLLOUT_RETRAIN_*: what the
    operator tells a Job's container. The command line wins."""
    given = {dest: env.get(ENV_PREFIX + key, "") for dest, key in ENV_DEFAULTS.items()}
    for dest in ("champion", "register", "metric", "dataset", "outcome_path"):
        if getattr(args, dest) is None and given[dest]:
            setattr(args, dest, Path(given[dest]) if dest == "outcome_path" else given[dest])
    if args.data is None and args.records is None:
        if given["records"]:
            args.records = given["records"]
        elif given["data"]:
            args.data = Path(given["data"])
    # The operator always names the model and an alias; they only mean something with
    # records to read and a registered name to alias, and are not refused otherwise.
    if args.records and args.model is None and given["model"]:
        args.model = given["model"]
    if args.records and args.since is None and given["since"]:
        args.since = _since(given["since"])
    if args.register and args.alias is None and given["alias"]:
        args.alias = given["alias"]
    if args.margin is None:
        args.margin = float(given["margin"]) if given["margin"] else DEFAULT_MARGIN
    if args.min_rows is None:
        args.min_rows = int(given["min_rows"]) if given["min_rows"] else DEFAULT_MIN_ROWS
    original = env.get(ENV_PREFIX + "ORIGINAL", "")
    if original not in ("", "none", "champion"):
        raise ValueError(f"{ENV_PREFIX}ORIGINAL={original!r}: expected 'champion' or 'none'")
    if original == "champion" and args.original is None and args.dataset is None:
        args.original_from_champion = True


def _train(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    missing = [] if args.champion else ["--champion"]
    if not (args.data or args.records):
        missing.append("--data or --records")
    if missing:
        return _failure(
            EXIT_BAD_INPUT,
            f"to train, give {', '.join(missing)} (or {ENV_PREFIX}CHAMPION and "
            f"{ENV_PREFIX}RECORDS or {ENV_PREFIX}DATA; or NAME, to ask the operator)",
        )
    problem = modelserver_unavailable("retrain")
    if problem is not None:
        return _failure(EXIT_BAD_INPUT, problem.removeprefix("modelrollout retrain: "))
    from modelserver.retraining import ChampionUnavailableError, RetrainError

    # Flags that would be silently ignored are refused: a Job's spec with a typo must fail.
    if args.alias and not args.register:
        return _failure(EXIT_BAD_INPUT, "--alias needs --register NAME (which model to alias)")
    if (args.model or args.since) and not args.records:
        return _failure(
            EXIT_BAD_INPUT, "--model and --since choose inference records: use --records"
        )
    if args.dataset is not None and (args.original or args.original_from_champion):
        return _failure(
            EXIT_BAD_INPUT, "--dataset is the original training set: not with --original*"
        )
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="modelrollout-retrain-"))
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        return _failure(
            EXIT_BAD_INPUT, f"{out} exists and is not empty; retrain into a new directory"
        )
    try:
        # MLflow's client prints links to runs on stdout; stdout is our JSON.
        with contextlib.redirect_stdout(sys.stderr):
            document, code = _run(args, out)
    except RetrainError as error:
        return _failure(EXIT_BAD_INPUT, str(error))
    except ChampionUnavailableError as error:
        return _failure(EXIT_FAILED, str(error))
    except Exception as error:
        # Whatever reads the Job's log still gets one JSON object; the trace is for people.
        traceback.print_exc(file=sys.stderr)
        return _failure(EXIT_FAILED, f"{type(error).__name__}: {error}")
    out.mkdir(parents=True, exist_ok=True)
    staged = out / f".{OUTCOME_FILE}.partial"
    staged.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    staged.replace(out / OUTCOME_FILE)  # whole or not at all, for whoever polls for it
    return code, document


def termination_message(document: Mapping[str, Any]) -> str:
    """The outcome as one line of JSON within TERMINATION_MESSAGE_LIMIT bytes: what the
    operator reads (rollout.retraining.judge), long texts shortened, never cut mid-JSON."""
    error = document.get("error")
    registered = document.get("registered")
    compact: dict[str, Any] = {
        "accepted": bool(document.get("accepted")),
        "metric": document.get("metric"),
        "candidate": document.get("candidate"),
        "champion": document.get("champion"),
        "rows": document.get("rows"),
        "reason": str(document.get("reason") or ""),
        "registered": (
            {k: registered.get(k) for k in ("name", "version", "alias", "sha256")}
            if isinstance(registered, Mapping)
            else None
        ),
        "error": str(error.get("message", "")) if isinstance(error, Mapping) else error,
    }
    compact = {k: v for k, v in compact.items() if v is not None}
    for field in ("reason", "error"):  # each its share; the figures are what matters
        text = compact.get(field)
        if isinstance(text, str) and len(text) > TEXT_LIMIT:
            compact[field] = text[:TEXT_LIMIT] + " [...]"
    line = json.dumps(compact, separators=(",", ":"))
    for field in ("reason", "error"):
        excess = len(line.encode()) - TERMINATION_MESSAGE_LIMIT
        if excess > 0 and isinstance(compact.get(field), str):
            long_text: str = compact[field]
            compact[field] = long_text[: max(len(long_text) - excess - 8, 0)] + " [...]"
            line = json.dumps(compact, separators=(",", ":"))
    return line


def _write_termination_message(path: Path, document: Mapping[str, Any]) -> None:
    try:
        path.write_text(termination_message(document), encoding="utf-8")
    except OSError as error:
        # The outcome is still on stdout (and the log is the fallback the Job reads).
        print(f"modelrollout retrain: cannot write {path}: {error}", file=sys.stderr)


def _run(args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], int]:
    from modelserver.retraining import RetrainError, load_champion, retrain
    from modelserver.tabular import TableError, read_table

    try:
        fresh = _fresh(args)
        original = read_table(args.original) if args.original is not None else None
    except TableError as error:
        raise RetrainError(str(error)) from None
    print(f"loading the champion {args.champion}", file=sys.stderr)
    champion = load_champion(
        args.champion,
        tracking_uri=args.tracking_uri,
        with_dataset=args.original_from_champion,
        trusted=args.trusted,
    )
    if args.original_from_champion:
        original = champion.dataset
    if args.dataset is not None:
        # A pinned dataset: the training set that version was registered with.
        print(f"loading the training set of {args.dataset}", file=sys.stderr)
        original = load_champion(
            args.dataset, tracking_uri=args.tracking_uri, with_dataset=True, trusted=args.trusted
        ).dataset
    print(f"retraining on {len(fresh)} fresh row(s) into {out / PACKAGE_DIR}", file=sys.stderr)
    outcome = retrain(
        champion,
        fresh,
        target=args.target,
        original=original,
        holdout=args.holdout,
        margin=args.margin,
        metric=args.metric,
        seed=args.seed,
        out=out / PACKAGE_DIR,
        min_rows=args.min_rows,
        trusted=args.trusted,
    )
    print(outcome.reason, file=sys.stderr)
    document = outcome.to_json()
    if not outcome.accepted:
        return document, EXIT_REJECTED
    if not args.register:
        return document, EXIT_ACCEPTED
    registered, failure = _register(outcome.package, args)
    document["registered"] = registered
    if failure is not None:
        document["error"] = {"kind": "registration", "message": failure}
        return document, EXIT_FAILED
    return document, EXIT_ACCEPTED


def _fresh(args: argparse.Namespace) -> pd.DataFrame:
    from modelserver.retraining import RetrainError, labelled_records
    from modelserver.tabular import read_table

    if args.data is not None:
        return read_table(args.data)
    # The seam for fresh rows from the inference-records store (modelserver.records).
    if not args.model:
        raise RetrainError("--records needs --model NAME: whose inference records to read")
    return labelled_records(args.records, args.model, since=args.since)


def _register(directory: Path | None, args: argparse.Namespace) -> tuple[Any, str | None]:
    from modelserver.registration import RegistrationError
    from modelserver.registration import register as register_version

    assert directory is not None  # an accepted outcome has its package
    print(f"registering {directory} as {args.register}", file=sys.stderr)
    try:
        registered = register_version(
            directory,
            args.register,
            tracking_uri=args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""),
            alias=args.alias,
            experiment=args.experiment,
            description=f"retrained from {args.champion}",
        )
    except RegistrationError as error:
        print(f"modelrollout retrain: {error}", file=sys.stderr)
        return None, str(error)
    return registered.to_json(), None


def _failure(code: int, message: str) -> tuple[int, dict[str, Any]]:
    print(f"modelrollout retrain: {message}", file=sys.stderr)
    kind = "bad-input" if code == EXIT_BAD_INPUT else "failure"
    return code, {"accepted": False, "error": {"kind": kind, "message": message}}


def _fail(code: int, message: str) -> int:
    code, document = _failure(code, message)
    json.dump(document, sys.stdout)
    print()
    return code
