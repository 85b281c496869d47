"""`modelrollout serve`: run the reference model server (package `modelserver`).

Settings come from the environment (MODEL_* as the operator injects them,
MODELSERVER_* for tuning); flags override them for local use.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelrollout.cli.extras import modelserver_unavailable


def register(subparsers: Any) -> None:
    from modelserver.settings import Settings

    epilog = "environment:\n" + "\n".join(
        f"  {name} (default {default}): {doc}" for name, default, doc in Settings.describe()
    )
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over the Open Inference Protocol, with drift metrics",
        description=(
            "Serve a scikit-learn pipeline (skops or ONNX) over KServe V2/V1 REST and V2 gRPC."
        ),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-name", help="overrides MODEL_NAME")
    parser.add_argument("--model-version", help="overrides MODEL_VERSION")
    parser.add_argument(
        "--model-uri", help="overrides MODEL_URI (file:///path, a path, or an http(s):// URL)"
    )
    parser.add_argument("--model-sha256", help="overrides MODEL_SHA256")
    parser.add_argument("--host", help="overrides MODELSERVER_HOST")
    parser.add_argument("--port", type=int, help="overrides MODELSERVER_PORT")
    parser.add_argument(
        "--grpc-port", type=int, help="overrides MODELSERVER_GRPC_PORT (0 turns gRPC off)"
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_const",
        const=True,
        help="load pickle/joblib artifacts (they can run code when loaded)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    problem = modelserver_unavailable("serve")
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from modelserver.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(
            model_name=args.model_name,
            model_version=args.model_version,
            model_uri=args.model_uri,
            model_sha256=args.model_sha256,
            host=args.host,
            port=args.port,
            grpc_port=args.grpc_port,
            allow_pickle=args.allow_pickle,
        )
    except SettingsError as exc:
        print(f"modelrollout serve: {exc}", file=sys.stderr)
        return 2
    from modelserver.server import run

    return run(settings)
