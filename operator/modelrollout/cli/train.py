"""`modelrollout train`: train example pipelines and the rollout variants.

Prints one JSON document on stdout, `{"artifacts": [{"variant", "uri",
"sha256", ...}]}`, so scripts (and the end-to-end tests) can hand the paths
and digests straight to MODEL_URI and MODEL_SHA256.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from modelrollout.cli.extras import modelserver_unavailable

VARIANT_NAMES = ("baseline", "improved", "degraded", "shifted")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train example models (and variants for rollouts) on bundled data",
        description=(
            "Train scikit-learn pipelines on bundled data and save each as an artifact with "
            "its sha256 and reference profile. Variants: baseline (v1), improved (v2, "
            "better), degraded (labelling bug: lower accuracy), shifted (trained on a slice: "
            "live data looks drifted)."
        ),
    )
    parser.add_argument("--dataset", default="wine", choices=("wine", "breast_cancer", "penguins"))
    parser.add_argument(
        "--variant",
        action="append",
        choices=VARIANT_NAMES,
        help="repeatable; default: all variants",
    )
    parser.add_argument("--out", required=True, type=Path, help="directory for the artifacts")
    parser.add_argument("--format", default="skops", choices=("skops", "onnx"))
    parser.add_argument("--seed", type=int, default=0, help="split and sampling seed")
    parser.add_argument("--bins", type=int, default=10, help="quantile bins per numeric feature")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    problem = modelserver_unavailable("train")
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from modelserver.training import train

    artifacts = []
    for variant in args.variant or VARIANT_NAMES:
        try:
            trained = train(args.dataset, variant, args.out, args.format, args.seed, args.bins)
        except ValueError as exc:
            print(f"modelrollout train: {exc}", file=sys.stderr)
            return 2
        print(
            f"{trained.path}: {variant}, held-out accuracy {trained.holdout_accuracy:.3f}",
            file=sys.stderr,
        )
        artifacts.append(trained.to_json())
    json.dump({"artifacts": artifacts}, sys.stdout, indent=1)
    print()
    return 0
