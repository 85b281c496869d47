"""`modelrollout run`: start the operator."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

from modelrollout.settings import OperatorSettings, SettingsError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run the operator",
        description=(
            "Run the operator: watch ModelDeployments and roll out their model servers. "
            "Credentials come from the pod's ServiceAccount in a cluster, else from the "
            "standard kubeconfig resolution (KUBECONFIG, ~/.kube/config). Settings are "
            "also read from MODELROLLOUT_* environment variables; flags win."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=None, metavar="NS",
        help="watch only this namespace (repeatable); default: all namespaces",
    )  # fmt: skip
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone", action="store_true", default=None,
        help="run without Kopf peering (a single replica that never pauses)",
    )  # fmt: skip
    peering.add_argument(
        "--require-peering", action="store_true", default=None,
        help=(
            "without the peering object, act on nothing until it exists (default: run "
            "alone, with a warning)"
        ),
    )  # fmt: skip
    parser.add_argument(
        "--priority", type=int, default=None,
        help="peering priority; the highest-priority replica acts, the others wait",
    )  # fmt: skip
    parser.add_argument(
        "--liveness", default=None, metavar="URL",
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )  # fmt: skip
    # Off by default: a developer's `modelrollout run` should not open a port on every
    # interface, nor take 8080 from the model server (`modelrollout serve`'s default)
    # on the same machine. The Helm chart turns it on (8080, the usual controller
    # metrics port; its Service, ServiceMonitor and probes point there).
    parser.add_argument(
        "--metrics-port", type=int, default=0, metavar="PORT",
        help="serve the operator's Prometheus metrics on this port at /metrics (default: off)",
    )  # fmt: skip
    parser.add_argument(
        "--metrics-address", default="0.0.0.0", metavar="ADDR",
        help="address for --metrics-port (default: 0.0.0.0)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import CollectorRegistry, start_http_server

    from modelrollout.handlers.operator import build_registry
    from modelrollout.handlers.telemetry import Telemetry

    try:
        settings = OperatorSettings.from_env()
    except SettingsError as error:
        print(f"error: {error}")
        return 2
    overrides: dict[str, Any] = {}
    if args.namespace:
        overrides["namespaces"] = tuple(args.namespace)
    elif args.all_namespaces:
        overrides["namespaces"] = ()
    if args.standalone:
        overrides["standalone"] = True
    if args.require_peering:
        overrides["peering_required"] = True
    if args.priority is not None:
        overrides["priority"] = args.priority
    settings = dataclasses.replace(settings, **overrides)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    telemetry = Telemetry(CollectorRegistry())
    server = None
    if args.metrics_port:
        server, _ = start_http_server(
            args.metrics_port, addr=args.metrics_address, registry=telemetry.registry
        )
    try:
        kopf.run(
            registry=build_registry(settings, telemetry),
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=settings.standalone,
            priority=settings.priority,
            # A peering name makes peering mandatory in Kopf (a startup handler may
            # make it optional when the object is absent); standalone has none.
            peering_name=None if settings.standalone else settings.peering_name,
            liveness_endpoint=args.liveness,
        )
    finally:
        if server is not None:
            server.shutdown()
    return 0
