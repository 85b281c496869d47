"""The operator's settings, read from the environment (prefix MODELROLLOUT_).

Each setting states its unit and why its default is what it is. Command-line
flags of `modelrollout run` override the environment.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

PREFIX = "MODELROLLOUT_"


class SettingsError(ValueError):
    """An environment variable holds a value the operator cannot use."""


def _random_priority() -> int:
    # Kopf peering pauses every replica but the highest-priority one, and freezes
    # all of them on a tie; a random priority per process makes ties negligible.
    return random.randint(1, 1_000_000)  # noqa: S311 - not security-sensitive


@dataclass(frozen=True)
class OperatorSettings:
    # Namespaces to watch; empty means cluster-wide.
    namespaces: tuple[str, ...] = ()
    # Seconds between reconciles of an object nothing happens to: a safety net for
    # a missed watch event. Rollouts never wait on it (events and their own timers
    # drive them), so five minutes keeps 1000 idle objects at ~3 reconciles/s.
    resync_seconds: float = 300.0
    # Seconds of the longest back-off after a failing reconcile (API errors);
    # back-off doubles from 1 s so a broken object costs little and recovers fast.
    max_error_backoff_seconds: float = 300.0
    # Kopf peering: objects named so, and this replica's priority (see above).
    peering_name: str = "modelrollout"
    priority: int = field(default_factory=_random_priority)
    # Seconds a replica's peering record stays valid: a standby replica takes over
    # this long after the acting one dies without saying goodbye (a graceful stop
    # hands over at once). Kopf's default; each replica rewrites its record every
    # lifetime minus 5-10 s, so much shorter lifetimes mostly add API writes.
    peering_lifetime_seconds: int = 60
    # Run without peering (a single replica that never pauses, e.g. the demo).
    standalone: bool = False
    # What to do when the peering object is absent at start-up (the CRDs are in
    # crds/, the object is the Helm chart's or the user's). False: run alone, with a
    # WARNING saying so and how to create the object, so that `kubectl apply -f
    # crds/` then `modelrollout run` works on a fresh cluster; the price is that a
    # second replica started the same way acts too, until the object exists. True:
    # log an ERROR and act on nothing until the object appears, so replicas never
    # both act; the chart sets it, since it runs two replicas.
    peering_required: bool = False
    # The MLflow tracking server a spec.model.registry without `uri` uses (MLflow's
    # own variable, MLFLOW_TRACKING_URI, so one setting serves the operator and
    # the mlflow tools beside it).
    registry_uri: str = ""
    # Seconds between looks at a tracked alias while nothing else wakes the object:
    # a new version behind the alias starts rolling out within this time. 30 s is
    # one cheap REST call per object, and quicker than a person would notice.
    registry_poll_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if env is None else env
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = env.get(PREFIX + name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"{PREFIX}{name}={raw!r} is not a number") from None
            if value <= 0:
                raise SettingsError(f"{PREFIX}{name}={raw!r} must be positive")
            return value

        def flag(name: str) -> bool:
            return env.get(PREFIX + name, "").lower() in {"1", "true", "yes"}

        namespaces = tuple(
            ns.strip() for ns in env.get(PREFIX + "NAMESPACES", "").split(",") if ns.strip()
        )
        return cls(
            namespaces=namespaces,
            resync_seconds=number("RESYNC_SECONDS", defaults.resync_seconds),
            max_error_backoff_seconds=number(
                "MAX_ERROR_BACKOFF_SECONDS", defaults.max_error_backoff_seconds
            ),
            peering_name=env.get(PREFIX + "PEERING_NAME") or defaults.peering_name,
            priority=int(number("PRIORITY", defaults.priority)),
            peering_lifetime_seconds=int(
                number("PEERING_LIFETIME_SECONDS", defaults.peering_lifetime_seconds)
            ),
            standalone=flag("STANDALONE"),
            peering_required=flag("PEERING_REQUIRED"),
            registry_uri=env.get("MLFLOW_TRACKING_URI", "").strip(),
            registry_poll_seconds=number("REGISTRY_POLL_SECONDS", defaults.registry_poll_seconds),
        )
