"""`modelrollout package`: package your own fitted pipeline and its training data.

The shell face of `modelserver.packaging.package` (README: "Bring your own
model"). Prints one JSON document on stdout (the directory, artifact path and
URI, sha256, profile and card paths, the card's metrics), so a script can hand
them to `serve` or a ModelDeployment; progress and errors go to stderr, and bad
input exits 2 with `modelrollout package: <problem>` and nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from modelrollout.cli.extras import modelserver_unavailable
from modelrollout.cli.register import add_registry_arguments, register_package


def _feature_type(text: str) -> tuple[str, str]:
    name, sep, kind = text.rpartition("=")
    if not sep or not name or kind not in ("numeric", "categorical"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=numeric or NAME=categorical")
    return name, kind


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "package",
        help="package your fitted pipeline with its data: artifact, sha256, profile, model card",
        description=(
            "Package a fitted scikit-learn-compatible pipeline (.skops, .onnx; .joblib/.pkl "
            "only with --allow-pickle) and its training data (.csv or .parquet) into a "
            "directory the model server serves: model.<format>, its .sha256 and "
            ".profile.json, model-card.json and data/. Features are all columns but the "
            "target, in file order. Metrics come from --test data (preferred) or a seeded "
            "--holdout share of the training file (honest only if the model was fitted "
            "without those rows)."
        ),
    )
    parser.add_argument("--model", required=True, type=Path, help="the fitted pipeline's file")
    parser.add_argument("--data", required=True, type=Path, help="training data (.csv, .parquet)")
    parser.add_argument("--target", required=True, help="the label column")
    split = parser.add_mutually_exclusive_group()
    split.add_argument(
        "--holdout",
        type=_fraction,
        default=0.2,
        help="share of --data scored for the card's metrics (default 0.2)",
    )
    split.add_argument("--test", type=Path, help="held-out data scored instead (preferred)")
    parser.add_argument("--out", required=True, type=Path, help="directory to create")
    parser.add_argument(
        "--feature-type",
        action="append",
        type=_feature_type,
        default=[],
        metavar="NAME=KIND",
        help="override an inferred kind (numeric|categorical); repeatable",
    )
    parser.add_argument(
        "--trusted",
        action="append",
        default=[],
        metavar="TYPE",
        help="a type the skops file may contain beyond skops' defaults; repeatable",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept .joblib/.pkl (loading them runs code from the file)",
    )
    parser.add_argument(
        "--task", choices=("classification", "regression"), help="default: inferred"
    )
    parser.add_argument("--name", help="the model's name in the card")
    parser.add_argument("--bins", type=int, default=10, help="quantile bins per numeric feature")
    parser.add_argument("--seed", type=int, default=0, help="holdout split seed")
    parser.add_argument(
        "--register", metavar="NAME", help="then register it in MLflow as a version of NAME"
    )
    add_registry_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    problem = modelserver_unavailable("package")
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from modelserver.packaging import PackagingError, package

    print(f"packaging {args.model} with {args.data} into {args.out}", file=sys.stderr)
    try:
        packaged = package(
            args.model,
            args.data,
            args.target,
            args.out,
            holdout=args.holdout,
            test=args.test,
            allow_pickle=args.allow_pickle,
            feature_types=dict(args.feature_type),
            name=args.name,
            bins=args.bins,
            seed=args.seed,
            trusted=args.trusted,
            task=args.task,
        )
    except PackagingError as exc:
        print(f"modelrollout package: {exc}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{k} {v:.4g}" for k, v in packaged.card["metrics"].items())
    print(
        f"{packaged.artifact}: {packaged.card['task']}, {summary} "
        f"({packaged.card['evaluation']['method']}, {packaged.card['evaluation']['rows']} rows)",
        file=sys.stderr,
    )
    document = packaged.to_json()
    if args.register:
        # Packaged and kept even if registering fails: `modelrollout register` retries it.
        registered = register_package(packaged.directory, args.register, args)
        if registered is None:
            return 2
        document["registered"] = registered
    json.dump(document, sys.stdout, indent=1)
    print()
    return 0
