"""`modelrollout loadgen`: send realistic, optionally drifted traffic to model servers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from modelrollout.cli.extras import modelserver_unavailable


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "loadgen",
        help="send dataset rows to model servers at a rate, with optional drift and feedback",
    )
    parser.add_argument(
        "--url", action="append", required=True, help="server base URL; repeat for several"
    )
    parser.add_argument("--model", help="model name in the URL path (default: the dataset name)")
    # Spelled out, not imported: modelserver.datasets needs numpy, and the parser must
    # build without it (tests/unit/cli/test_extras.py); a unit test keeps them equal.
    parser.add_argument(
        "--dataset", default="wine", choices=("wine", "breast_cancer", "penguins", "diabetes")
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="requests/s on a fixed schedule, latency timed from each request's scheduled "
        "send (a stall delays the ones behind it); the summary warns when the achieved rate "
        "is over 10%% short; 0 = as fast as possible, timed from the actual send",
    )
    parser.add_argument(
        "--duration", type=float, help="seconds to run (default 10 without --requests)"
    )
    parser.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most")
    parser.add_argument("--batch", type=int, default=1, help="rows per request")
    parser.add_argument("--protocol", default="v2", choices=("v2", "v1", "v2-tensor"))
    parser.add_argument(
        "--drift-shift",
        type=float,
        default=0.0,
        help="shift numeric features by this many std devs",
    )
    parser.add_argument(
        "--drift-features",
        default="",
        help="comma-separated features to shift (default: all numeric)",
    )
    parser.add_argument(
        "--unseen-share",
        type=_share,
        default=0.0,
        help="share of categorical values replaced by unseen ones",
    )
    parser.add_argument(
        "--drop-share", type=_share, default=0.0, help="share of requests missing one feature"
    )
    parser.add_argument(
        "--feedback-share",
        type=_share,
        default=0.0,
        help="share of answered requests given their true label",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--progress", type=float, default=5.0, help="seconds between progress lines"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(handler=handle)  # fmt: skip


def handle(args: argparse.Namespace) -> int:
    problem = modelserver_unavailable("loadgen")
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from modelserver.loadgen import LoadConfig, run

    config = LoadConfig(
        urls=tuple(args.url),
        model=args.model or args.dataset,
        dataset=args.dataset,
        rate=args.rate,
        duration=args.duration if args.duration is not None or args.requests else 10.0,
        requests=args.requests,
        concurrency=args.concurrency,
        batch=args.batch,
        protocol=args.protocol,
        drift_shift=args.drift_shift,
        drift_features=tuple(f for f in args.drift_features.split(",") if f),
        unseen_share=args.unseen_share,
        drop_share=args.drop_share,
        feedback_share=args.feedback_share,
        seed=args.seed,
        progress_interval=args.progress,
    )
    try:
        summary = run(config)
    except ValueError as exc:
        print(f"modelrollout loadgen: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(summary.to_json(), sys.stdout)
        print()
    else:
        print(summary.line())
    return 0
