"""`promote`, `abort`, `retry`, `pause`, `resume`, `undo`: manual controls (and
`retrain NAME`, whose parser cli/retrain.py shares with the training program).

None edits spec (GitOps owns it). Each writes one command into the object's
`modelrollout.io/command` annotation; the operator applies it once and records
the result in status.lastCommand, which these commands wait for by default.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from modelrollout.api import Command, CommandAction, SpecError, parse_object
from modelrollout.api import names as n
from modelrollout.cli.kube import CliError, Session, add_target_arguments, connect

# The operator handles a command within a second when it runs; beyond this the
# user learns the command is stored but unacknowledged (is the operator running?).
DEFAULT_WAIT_SECONDS = 30.0

HELP: dict[CommandAction, str] = {
    "promote": "release the current pause, or with --full skip every remaining step",
    "abort": "send all traffic back to the stable revision now (phase Degraded)",
    "retry": "roll out the spec's revision again after an abort or a rollback",
    "pause": "hold the rollout at its current step",
    "resume": "continue a paused rollout",
    "undo": "serve an older revision from history (without editing spec)",
}


def register(subparsers: Any) -> None:
    for action, help_text in HELP.items():
        parser: argparse.ArgumentParser = subparsers.add_parser(
            action, help=help_text, description=help_text
        )
        add_target_arguments(parser)
        if action == "promote":
            parser.add_argument("--full", action="store_true", help="skip all remaining steps")
        if action == "undo":
            parser.add_argument(
                "--to-revision", type=int, default=None, metavar="N",
                help="history number to serve (see `history`); default: the previous one",
            )  # fmt: skip
        parser.add_argument(
            "--no-wait", action="store_true", help="do not wait for the operator to apply it"
        )
        parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT_SECONDS)
        parser.set_defaults(handler=control, action=action)


def control(args: argparse.Namespace) -> int:
    try:
        session = connect(args)
        return send(
            session, build_command(args), args.name, wait=not args.no_wait, timeout=args.timeout
        )
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code


def build_command(args: argparse.Namespace) -> Command:
    return Command(
        id=uuid.uuid4().hex,
        action=args.action,
        full=bool(getattr(args, "full", False)),
        to_revision=getattr(args, "to_revision", None),
        dataset=getattr(args, "dataset", None),
    )


def send(session: Session, command: Command, name: str, *, wait: bool, timeout: float) -> int:
    from modelrollout.rollout import command_rejection

    body = session.get(name)
    try:
        spec, status = parse_object(body)
    except SpecError as error:
        raise CliError(f"modeldeployment {name!r} cannot be read: {error}") from None
    rejection = command_rejection(spec, status, command)
    if rejection:
        raise CliError(f"{command.action} does not apply now: {rejection}", code=3)
    session.annotate(name, n.COMMAND_ANNOTATION, command.to_annotation())
    if not wait:
        print(f"{command.action} sent to modeldeployment {name!r}")
        return 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = (session.get(name).get("status") or {}).get("lastCommand") or {}
        if last.get("id") == command.id:
            if last.get("result") == "Applied":
                print(f"{command.action}: {last.get('message') or 'applied'}")
                return 0
            print(f"error: {command.action} rejected: {last.get('message')}", file=sys.stderr)
            return 3
        time.sleep(0.5)
    print(
        f"error: {command.action} was sent but the operator has not applied it within "
        f"{timeout:.0f} s; is it running? "
        "(`kubectl get pods -l app.kubernetes.io/name=modelrollout`)",
        file=sys.stderr,
    )
    return 5
