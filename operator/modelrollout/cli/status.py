"""`status`, `list` and `history`: read-only views of ModelDeployments."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from modelrollout.api import SpecError, parse_object, parse_status
from modelrollout.cli.kube import CliError, Session, add_target_arguments, connect
from modelrollout.cli.render import TERMINAL_PHASES, history_lines, list_lines, status_lines
from modelrollout.rollout import shadow_phase

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


def _draw(session: Session, name: str) -> dict[str, Any]:
    """Prints the status view of `name`; returns the object it was drawn from."""
    body = session.get(name)
    try:
        spec, status = parse_object(body)
    except SpecError as error:
        print(f"modeldeployment {name!r} cannot be read: {error}")
        return body
    events = [
        (e.type or "", e.reason or "", e.message or "") for e in session.events(name, EVENTS_SHOWN)
    ]
    figures = None
    champion, version = status.stable_revision, status.canary_version
    if shadow_phase(spec, status) is not None and champion and version:
        figures = session.shadow_figures(name, champion, version, spec.service.target_port)
    lines = status_lines(
        body,
        spec,
        status,
        session.replicas(name),
        events,
        pods=session.pods(name),
        now=datetime.now(UTC),
        shadowing=figures,
    )
    print("\n".join(lines))
    return body


def watch_outcome(body: Mapping[str, Any]) -> int | None:
    """The exit code of `status --watch` for this object: 0 once Healthy, 1 once
    Degraded, None to keep watching.

    Only a status written for the object's current generation counts: right
    after a spec change the status still describes the previous spec (Healthy,
    say) until the operator has acted on the new one.
    """
    try:
        status = parse_status(body.get("status"))
    except SpecError:
        return None
    generation = (body.get("metadata") or {}).get("generation")
    if generation is not None and status.observed_generation != generation:
        return None
    if status.phase not in TERMINAL_PHASES:
        return None
    return 0 if status.phase == "Healthy" else 1


def watch(
    session: Session,
    name: str,
    *,
    interval: float = WATCH_INTERVAL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Redraws `name` every `interval` seconds until watch_outcome() decides."""
    while True:
        if sys.stdout.isatty():
            print("\033[H\033[2J", end="")
        outcome = watch_outcome(_draw(session, name))
        if outcome is not None:
            return outcome
        print(f"\n(watching; redraws every {interval:.0f} s, Ctrl-C to stop)", flush=True)
        sleep(interval)


@_guarded
def show_status(args: argparse.Namespace) -> int:
    session = connect(args)
    if not args.watch:
        _draw(session, args.name)
        return 0
    return watch(session, args.name)


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
