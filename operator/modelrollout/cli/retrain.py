"""`modelrollout retrain`: the retraining Job's program (modelserver.retraining).

Refits the champion's pipeline on fresh labelled rows, scores candidate and champion
on the same held-out fresh rows, and packages (and with --register, registers and
moves --alias to) the candidate only when it is not worse by more than --margin
(README: "Retraining: `modelrollout retrain`").

stdout is one JSON object, the outcome (also written to DIR/outcome.json once a
decision was made), so the Job's log is the result; progress, mlflow's chatter and
errors go to stderr. Exit codes, for whatever reads the Job's status:

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
import traceback
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
        help="with NAME: train on this registry version's training set, not the champion's",
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
        default=0.0,
        help="how much worse than the champion the candidate may be (negative: must beat it)",
    )
    parser.add_argument(
        "--metric",
        choices=("accuracy", "f1", "mae", "rmse"),
        help="the decision metric (default: accuracy for a classifier, mae for a regressor)",
    )
    parser.add_argument(
        "--min-rows", type=int, default=50, help="fewest fresh labelled rows (default 50)"
    )
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
    parser.add_argument("--out", type=Path, help="new directory: outcome.json, candidate/")
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
    missing = [f"--{f}" for f in ("champion", "out") if not getattr(args, f)]
    if not (args.data or args.records):
        missing.append("--data or --records")
    if missing:
        return _fail(
            EXIT_BAD_INPUT, f"to train, give {', '.join(missing)} (or NAME, to ask the operator)"
        )
    problem = modelserver_unavailable("retrain")
    if problem is not None:
        return _fail(EXIT_BAD_INPUT, problem.removeprefix("modelrollout retrain: "))
    from modelserver.retraining import ChampionUnavailableError, RetrainError

    # Flags that would be silently ignored are refused: a Job's spec with a typo must fail.
    if args.alias and not args.register:
        return _fail(EXIT_BAD_INPUT, "--alias needs --register NAME (which model to alias)")
    if (args.model or args.since) and not args.records:
        return _fail(EXIT_BAD_INPUT, "--model and --since choose inference records: use --records")
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        return _fail(EXIT_BAD_INPUT, f"{out} exists and is not empty; retrain into a new directory")
    try:
        # MLflow's client prints links to runs on stdout; stdout is our JSON.
        with contextlib.redirect_stdout(sys.stderr):
            document, code = _run(args, out)
    except RetrainError as error:
        return _fail(EXIT_BAD_INPUT, str(error))
    except ChampionUnavailableError as error:
        return _fail(EXIT_FAILED, str(error))
    except Exception as error:
        # Whatever reads the Job's log still gets one JSON object; the trace is for people.
        traceback.print_exc(file=sys.stderr)
        return _fail(EXIT_FAILED, f"{type(error).__name__}: {error}")
    out.mkdir(parents=True, exist_ok=True)
    staged = out / f".{OUTCOME_FILE}.partial"
    staged.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    staged.replace(out / OUTCOME_FILE)  # whole or not at all, for whoever polls for it
    json.dump(document, sys.stdout, indent=1)
    print()
    return code


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


def _fail(code: int, message: str) -> int:
    print(f"modelrollout retrain: {message}", file=sys.stderr)
    kind = "bad-input" if code == EXIT_BAD_INPUT else "failure"
    json.dump({"accepted": False, "error": {"kind": kind, "message": message}}, sys.stdout)
    print()
    return code
