"""`prune-registry NAME --keep N [--keep-younger-than 30d] [--dry-run]`: delete old
versions of a registered model in MLflow, never one a ModelDeployment still needs
(README: "Pruning the registry").

It reads every ModelDeployment in the cluster (all namespaces): what their status
says serves, is rolled out, or `undo --to-revision` can reach, what their spec
pins, and anything behind an alias is kept whatever the policy (the decision is
modelrollout.rollout.retention's). When the cluster or the registry cannot be
read it deletes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelrollout.api import SpecError, parse_status
from modelrollout.cli.kube import CliError, connect

if TYPE_CHECKING:
    from modelrollout.registry import MlflowRegistry
    from modelrollout.rollout import Retention, RetentionPolicy, Tracker


@dataclass(frozen=True)
class PruneOutcome:
    trackers: tuple[str, ...]  # namespace/name of each ModelDeployment of the model
    decisions: tuple[Retention, ...]
    deleted: tuple[str, ...] = ()
    # Versions the policy would delete but that an alias reached after the decision.
    spared: dict[str, str] = field(default_factory=dict)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prune-registry",
        help="delete old versions of a registered model, never one a ModelDeployment needs",
        description=(
            "Delete versions of registered model NAME in MLflow beyond the newest --keep "
            "(and --keep-younger-than). Never deleted, whatever the policy: what any "
            "ModelDeployment in the cluster serves or rolls out, every version in their "
            "history (what `undo --to-revision` can reach), what their spec pins, and "
            "every version behind an alias. MLflow keeps each deleted version's run and "
            "its artifacts (model files, dataset snapshot)."
        ),
    )
    parser.add_argument("name", help="the registered model's name in MLflow")
    parser.add_argument(
        "--keep", type=int, required=True, metavar="N", help="keep the newest N versions"
    )
    parser.add_argument(
        "--keep-younger-than",
        metavar="AGE",
        help="also keep versions created less than AGE ago (e.g. 30d, 12h)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be deleted, delete nothing"
    )
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", ""),
        help="the MLflow tracking server (default: $MLFLOW_TRACKING_URI)",
    )
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--context", help="kubeconfig context to use")
    parser.set_defaults(handler=handle, namespace=None)


def handle(args: argparse.Namespace) -> int:
    from modelrollout.registry import MlflowRegistry, RegistryError

    try:
        policy = policy_of(args.keep, args.keep_younger_than)
        if not args.tracking_uri:
            raise CliError("no MLflow registry: pass --tracking-uri or set MLFLOW_TRACKING_URI")
        deployments = connect(args).list_every_namespace()
        outcome = prune_registry(
            MlflowRegistry(args.tracking_uri),
            args.name,
            deployments,
            policy,
            now=datetime.now(UTC),
            dry_run=args.dry_run,
        )
    except RegistryError as error:
        print(f"error: {error}; nothing deleted", file=sys.stderr)
        return 1
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    print("\n".join(report_lines(args.name, outcome, dry_run=args.dry_run)))
    return 0


def policy_of(keep: int, younger_than: str | None) -> RetentionPolicy:
    from modelrollout.api.durations import parse_age
    from modelrollout.rollout import RetentionPolicy

    try:
        age = parse_age(younger_than) if younger_than else None
        return RetentionPolicy(keep=keep, keep_younger_than=age)
    except ValueError as error:
        raise CliError(str(error), code=2) from None


def prune_registry(
    registry: MlflowRegistry,
    model: str,
    deployments: Sequence[Mapping[str, Any]],
    policy: RetentionPolicy,
    *,
    now: datetime,
    dry_run: bool,
) -> PruneOutcome:
    """Decide from `deployments` (every ModelDeployment object in the cluster) and
    the registry's versions of `model`; delete unless `dry_run`. Raises CliError
    (a status no one can read) or RegistryError before deleting anything."""
    from modelrollout.registry import RegistryError
    from modelrollout.rollout import decide, protected_versions

    trackers = trackers_of(deployments)
    protected = protected_versions(model, trackers)
    decisions = decide(registry.versions(model), protected, policy, now)
    users = tuple(
        sorted(
            t.name for t in trackers if t.registry_name == model or protected_versions(model, [t])
        )
    )
    doomed = [d.version for d in decisions if d.delete]
    if dry_run or not doomed:
        return PruneOutcome(users, decisions)
    # An alias moved since the listing (a retraining Job registering, a person)
    # protects its version: look once more, right before deleting.
    aliased = {v.version: v.aliases for v in registry.versions(model) if v.aliases}
    spared = {v: "alias " + ", ".join(aliased[v]) for v in doomed if v in aliased}
    deleted: list[str] = []
    for version in doomed:
        if version in spared:
            continue
        try:
            registry.delete_version(model, version)
        except RegistryError as error:
            done = ", ".join(deleted) or "none"
            raise CliError(
                f"deleting version {version} of {model!r} failed: {error}; "
                f"deleted before it: {done}; the rest left as they were"
            ) from None
        deleted.append(version)
    return PruneOutcome(users, decisions, tuple(deleted), spared)


def trackers_of(deployments: Sequence[Mapping[str, Any]]) -> list[Tracker]:
    """What each ModelDeployment says it needs. A status that cannot be read could
    name any version, so it stops the prune instead of counting as empty."""
    from modelrollout.rollout import Tracker

    trackers = []
    for body in deployments:
        meta = body.get("metadata") or {}
        who = f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"
        try:
            status = parse_status(body.get("status"))
        except SpecError as error:
            raise CliError(
                f"the status of modeldeployment {who} cannot be read ({error}): it may name "
                "versions still needed; nothing deleted"
            ) from None
        model = (body.get("spec") or {}).get("model") or {}
        registry = model.get("registry") if isinstance(model, dict) else None
        registry = registry if isinstance(registry, dict) else {}
        trackers.append(
            Tracker(
                name=who,
                status=status,
                registry_name=_text(registry.get("name")),
                pinned_version=_text(registry.get("version")),
            )
        )
    return trackers


def report_lines(model: str, outcome: PruneOutcome, *, dry_run: bool) -> list[str]:
    users = ", ".join(outcome.trackers) or "none in any namespace"
    lines = [f"registered model {model}; ModelDeployments using it: {users}"]
    rows = [("VERSION", "CREATED", "ACTION", "WHY")]
    for d in outcome.decisions:
        action = "delete" if d.delete else "keep"
        if d.version in outcome.spared:
            action, why = "keep", outcome.spared[d.version] + " (since the decision)"
        else:
            why = "; ".join(d.reasons)
        created = d.created_at.strftime("%Y-%m-%d %H:%M")
        rows.append((d.version, created, action, why))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    doomed = [d.version for d in outcome.decisions if d.delete and d.version not in outcome.spared]
    if dry_run:
        lines.append(
            f"dry run: {len(doomed)} version(s) would be deleted"
            + (f" ({', '.join(doomed)})" if doomed else "")
            + "; nothing deleted"
        )
    elif outcome.deleted:
        lines.append(
            f"deleted {len(outcome.deleted)} version(s) of {model} ({', '.join(outcome.deleted)}); "
            "their runs and artifacts (model files, dataset snapshot) stay in MLflow"
        )
    else:
        lines.append("nothing to delete")
    return lines


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None
