"""Whether this server mirrors its traffic, read from a file the operator rewrites under it.

The operator writes the shadow phase into a ConfigMap projected at
MODELSERVER_SHADOW_CONFIG_FILE: `{"percent": P, "champion": "<revision>",
"challenger": "<revision>", "url": "http://<canary Service's ClusterIP>:<port>"}`
(`{"percent": 0}` when no shadow step runs). Every revision mounts the same file,
so each server decides for itself, in `mirrored_percent` (the one place that rule
lives): it mirrors P% of its requests only when its own revision
(MODELROLLOUT_REVISION) is the champion and P is above 0, to the file's `url`, or
to MODELSERVER_SHADOW_URL when the file names none (the operator gives the
address in the file, so pods need no cluster DNS).

The kubelet updates a projected ConfigMap by swapping a `..data` symlink, so the
file changes under a running process: a timer stats the path (following links)
once a second and reads the file again only when its device, inode, size or
modification time moved. Every problem (no file, unreadable, not JSON, a percent
outside 0..100) means no mirroring, and is logged when the state changes, never
per request and never fatal: a champion must not stop serving over its shadow
configuration.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelserver.feedback import finite_number

log = logging.getLogger("modelserver.shadow")

# Seconds between stats of the file; the kubelet itself takes up to a minute or so
# to project a ConfigMap change, so a second adds nothing a rollout would notice.
CONFIG_STAT_SECONDS = 1.0
# A ConfigMap holds at most 1 MiB; this file is three fields.
MAX_CONFIG_BYTES = 64 * 1024
_UNREAD = ("unread",)


class ShadowConfigError(ValueError):
    """The file is not a shadow configuration; the message says what is wrong."""


@dataclass(frozen=True)
class ShadowPlan:
    percent: float
    champion: str
    challenger: str
    # The challenger's base URL; empty: MODELSERVER_SHADOW_URL.
    url: str = ""


@dataclass(frozen=True)
class MirrorState:
    """What this server does about shadow traffic, and why, as logged; `url` is
    the file's challenger address (empty: none given)."""

    percent: float
    reason: str
    problem: bool = False
    url: str = ""


def parse_plan(raw: bytes) -> ShadowPlan:
    try:
        data: Any = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ShadowConfigError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ShadowConfigError('not a JSON object like {"percent": 10, "champion": ...}')
    percent: Any = data.get("percent")
    if not finite_number(percent):
        raise ShadowConfigError("'percent' must be a number from 0 to 100")
    if not 0 <= percent <= 100:
        raise ShadowConfigError(f"'percent' is {percent}, outside 0 to 100")
    if percent == 0:
        return ShadowPlan(0.0, "", "")  # no shadow step: nothing else to say
    champion, challenger = data.get("champion"), data.get("challenger")
    if not isinstance(champion, str) or not isinstance(challenger, str):
        raise ShadowConfigError("'champion' and 'challenger' must be revision names (strings)")
    url = data.get("url", "")
    if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
        raise ShadowConfigError("'url' must be an http:// or https:// address")
    return ShadowPlan(float(percent), champion, challenger, url)


def mirrored_percent(plan: ShadowPlan, revision: str, default_url: str = "") -> MirrorState:
    """The share of its requests a server of `revision` mirrors under `plan`, and
    where to (`plan.url`, else `default_url`: MODELSERVER_SHADOW_URL)."""
    if plan.percent <= 0:
        return MirrorState(0.0, "not mirroring: the shadow percent is 0")
    if not plan.champion or plan.champion != revision:
        return MirrorState(
            0.0,
            f"not mirroring: this server's revision {revision!r} is not the champion "
            f"{plan.champion!r}",
        )
    if plan.challenger == revision:
        return MirrorState(
            0.0, f"not mirroring: revision {revision!r} is named champion and challenger", True
        )
    url = plan.url or default_url
    if not url:
        return MirrorState(
            0.0,
            "not mirroring: the shadow configuration names no url and "
            "MODELSERVER_SHADOW_URL is empty",
            True,
        )
    return MirrorState(
        plan.percent,
        f"mirroring {plan.percent:g}% of requests to the challenger {plan.challenger!r}",
        url=url,
    )


class ShadowConfigFile:
    """The file's current meaning for this server; `refresh()` on a timer keeps it."""

    def __init__(self, path: str, revision: str, default_url: str = "") -> None:
        self.path = Path(path)
        self.revision = revision
        self.default_url = default_url
        self.state = MirrorState(0.0, "")
        self._seen: tuple[Any, ...] = _UNREAD

    @property
    def percent(self) -> float:
        return self.state.percent

    def refresh(self) -> MirrorState:
        """Stat the file; read and decide again only when it changed."""
        try:
            found = self.path.stat()  # follows the kubelet's ..data symlink
        except FileNotFoundError:
            key: tuple[Any, ...] = ("missing",)
        except OSError as exc:
            key = ("error", exc.errno)
        else:
            key = (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)
        if key == self._seen:
            return self.state
        self._seen = key
        if key[0] == "missing":
            state = MirrorState(0.0, f"not mirroring: no shadow configuration at {self.path}")
        else:
            state = self._read()
        if state.reason != self.state.reason:
            (log.warning if state.problem else log.info)(state.reason)
        self.state = state
        return state

    def _read(self) -> MirrorState:
        try:
            with self.path.open("rb") as source:
                raw = source.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            # Perhaps caught mid-swap: read again at the next tick.
            self._seen = _UNREAD
            return MirrorState(0.0, f"not mirroring: cannot read {self.path}: {exc.strerror}", True)
        try:
            if len(raw) > MAX_CONFIG_BYTES:
                raise ShadowConfigError(f"larger than {MAX_CONFIG_BYTES} bytes")
            plan = parse_plan(raw)
        except ShadowConfigError as exc:
            return MirrorState(
                0.0, f"not mirroring: malformed shadow configuration {self.path}: {exc}", True
            )
        return mirrored_percent(plan, self.revision, self.default_url)


__all__ = ["CONFIG_STAT_SECONDS", "MirrorState", "ShadowConfigFile", "ShadowPlan", "parse_plan"]
