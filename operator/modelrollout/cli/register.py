"""`modelrollout register DIR --name NAME`: a packaged model (`modelrollout
package`) becomes a version in an MLflow model registry, with its dataset
(modelserver.registration). `package --register NAME` does the same in one go.

Prints one JSON document on stdout (name, version, uri, sha256, ...), so a
script can hand `models:/NAME/VERSION` on; progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from modelrollout.cli.extras import modelserver_unavailable


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--alias", help="point this alias at the new version (e.g. candidate: a tracking rollout)"
    )
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", ""),
        help="the MLflow tracking server (default: $MLFLOW_TRACKING_URI)",
    )
    parser.add_argument(
        "--experiment", default="modelrollout", help="the MLflow experiment of the run"
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "register",
        help="register a packaged model and its dataset in an MLflow model registry",
        description=(
            "Log a `modelrollout package` directory to MLflow (artifact, sha256, profile, "
            "model card under model/; training data under dataset/ and as the run's dataset "
            "input) and create a registry version tagged with the digests and metrics."
        ),
    )
    parser.add_argument("package", type=Path, help="the directory `modelrollout package` wrote")
    parser.add_argument("--name", required=True, help="the registered model's name")
    add_registry_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    registered = register_package(args.package, args.name, args)
    if registered is None:
        return 2
    json.dump(registered, sys.stdout, indent=1)
    print()
    return 0


def register_package(directory: Path, name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """The registered version as JSON, or None after printing why not."""
    problem = modelserver_unavailable("register")
    if problem is not None:
        print(problem, file=sys.stderr)
        return None
    from modelserver.registration import RegistrationError
    from modelserver.registration import register as register_version

    print(f"registering {directory} as {name} in {args.tracking_uri or '?'}", file=sys.stderr)
    try:
        # MLflow's client prints links to the run on stdout; stdout is our JSON.
        with contextlib.redirect_stdout(sys.stderr):
            registered = register_version(
                directory,
                name,
                tracking_uri=args.tracking_uri,
                alias=args.alias,
                experiment=args.experiment,
            )
    except RegistrationError as error:
        print(f"modelrollout register: {error}", file=sys.stderr)
        return None
    alias = f", alias {registered.alias}" if registered.alias else ""
    print(f"{registered.uri}{alias}", file=sys.stderr)
    return registered.to_json()
