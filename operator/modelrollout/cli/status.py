"""`status`, `list` and `history`: read-only views of ModelDeployments."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import SpecError, parse_object, parse_status
from modelrollout.api import names as n
from modelrollout.cli.kube import CliError, Session, add_target_arguments, connect
from modelrollout.cli.render import TERMINAL_PHASES, history_lines, list_lines, status_lines

# Redraw often enough to follow a rollout, rarely enough to cost the API nothing.
WATCH_INTERVAL_SECONDS = 2.0
EVENTS_SHOWN = 8


def register(subparsers: Any) -> None:
    status_parser: argparse.ArgumentParser = subparsers.add_parser(
        "status", help="show a ModelDeployment's rollout", description="Show a rollout."
    )
    add_target_arguments(status_parser)
    status_parser.add_argument(
        "-w", "--watch", action="store_true", help="redraw until Healthy or Degraded"
    )
    status_parser.set_defaults(handler=show_status)
    list_parser: argparse.ArgumentParser = subparsers.add_parser(
        "list", help="list ModelDeployments", description="List ModelDeployments."
    )
    add_target_arguments(list_parser, name=False)
    list_parser.set_defaults(handler=show_list)
    history_parser: argparse.ArgumentParser = subparsers.add_parser(
        "history", help="revisions that served all traffic", description="Show history."
    )
    add_target_arguments(history_parser)
    history_parser.set_defaults(handler=show_history)


def _guarded(view: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(view(args))
        except CliError as error:
            print(f"error: {error}", file=sys.stderr)
            return error.code

    return run


def _replicas(session: Session, name: str) -> dict[str, tuple[int, int]]:
    try:
        deployments = (
            client.AppsV1Api(session.api)
            .list_namespaced_deployment(
                session.namespace, label_selector=f"{n.LABEL_DEPLOYMENT}={name}"
            )
            .items
        )
    except ApiException:
        return {}
    replicas: dict[str, tuple[int, int]] = {}
    for d in deployments:
        labels = (d.metadata.labels if d.metadata else None) or {}
        ready = (d.status.ready_replicas if d.status else None) or 0
        wanted = (d.spec.replicas if d.spec else None) or 0
        replicas[labels.get(n.LABEL_REVISION, "")] = (ready, wanted)
    return replicas


def _draw(session: Session, name: str) -> str | None:
    body = session.get(name)
    try:
        spec, status = parse_object(body)
    except SpecError as error:
        print(f"modeldeployment {name!r} cannot be read: {error}")
        return None
    events = [
        (e.type or "", e.reason or "", e.message or "") for e in session.events(name, EVENTS_SHOWN)
    ]
    print("\n".join(status_lines(body, spec, status, _replicas(session, name), events)))
    return status.phase


@_guarded
def show_status(args: argparse.Namespace) -> int:
    session = connect(args)
    if not args.watch:
        _draw(session, args.name)
        return 0
    while True:
        if sys.stdout.isatty():
            print("\033[H\033[2J", end="")
        phase = _draw(session, args.name)
        if phase in TERMINAL_PHASES:
            return 0 if phase == "Healthy" else 1
        print(
            f"\n(watching; redraws every {WATCH_INTERVAL_SECONDS:.0f} s, Ctrl-C to stop)",
            flush=True,
        )
        time.sleep(WATCH_INTERVAL_SECONDS)


@_guarded
def show_list(args: argparse.Namespace) -> int:
    session = connect(args)
    rows = []
    for item in session.list_all():
        try:
            status = parse_status(item.get("status"))
        except SpecError:
            status = parse_status(None)
        rows.append((item["metadata"]["name"], status))
    print("\n".join(list_lines(rows)))
    return 0


@_guarded
def show_history(args: argparse.Namespace) -> int:
    session = connect(args)
    status = parse_status(session.get(args.name).get("status"))
    if not status.history:
        print(f"modeldeployment {args.name!r} has no promoted revision yet")
        return 0
    print("\n".join(history_lines(status)))
    return 0
