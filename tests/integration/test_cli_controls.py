"""The kubectl plugin's controls and views, run as a user runs them (the
`modelrollout` executable) against the real cluster with the operator running:
pause/resume, promote --full, undo (plain and --to-revision), history, list,
status --watch and the blue/green stages of status.

Each test checks what the user would see change: the phase and step in status,
which revision the main Service selects, each revision's Deployment size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.api import names as n
from support.operator import OperatorProcess
from support.rollouts import SETTLE_SECONDS, Rollouts, example, plain_canary
from support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    yield Rollouts(operator.cluster, namespace)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_serving(rollouts: Rollouts, name: str, version: str) -> dict[str, Any]:
    """Healthy with `version` stable; returns the status."""
    return rollouts.wait_status(
        name,
        f"Healthy on version {version}",
        lambda s: (
            s.get("phase") == "Healthy"
            and s.get("stableVersion") == version
            and "canaryRevision" not in s
        ),
        timeout=120,
    )


def wait_only(rollouts: Rollouts, name: str, revision: str, replicas: int) -> None:
    """`revision` alone runs (`replicas` ready pods, every other revision at 0) and
    is all the main Service selects and has endpoints on."""

    def probe() -> bool:
        sizes = rollouts.replicas(name)
        return (
            sizes.get(revision) == (replicas, replicas)
            and all(wanted == 0 for rev, (wanted, _) in sizes.items() if rev != revision)
            and rollouts.selector(name).get(n.LABEL_REVISION) == revision
            and rollouts.endpoint_revisions(name) == {revision: replicas}
        )

    wait_for(
        probe,
        timeout=SETTLE_SECONDS,
        what=f"only {revision} serving {name} "
        f"(replicas {rollouts.replicas(name)}, endpoints {rollouts.endpoint_revisions(name)})",
    )


def table(output: str) -> list[list[str]]:
    """The rows of a table the plugin printed, each split on blanks, without the header."""
    return [line.split() for line in output.strip().splitlines()[1:]]


def hold_until(until: datetime, what: str, unchanged: Callable[[], None]) -> None:
    """Checks `unchanged()` (which asserts) over and over until the wall clock passes `until`."""

    def probe() -> bool:
        unchanged()
        return datetime.now(UTC) >= until

    timeout = (until - datetime.now(UTC)).total_seconds() + 30
    wait_for(probe, timeout=timeout, what=what, interval=0.5)


def test_pause_holds_a_timed_pause_past_its_deadline_and_resume_goes_on(
    rollouts: Rollouts,
) -> None:
    pause_seconds = 12
    steps = [
        {"setWeight": 25},
        {"pause": {"duration": f"{pause_seconds}s"}},
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 75},
        {"pause": {}},
    ]
    rollouts.create(plain_canary("fraud", steps, replicas=4))
    old = wait_serving(rollouts, "fraud", "1")["stableRevision"]
    rollouts.patch_spec("fraud", {"model": {"version": "2"}})
    status = rollouts.wait_status("fraud", "the timed pause", lambda s: s.get("currentStep") == 1)
    new, started = status["canaryRevision"], moment(status["stepStartedAt"])

    assert rollouts.cli("pause", "fraud").stdout.strip() == "pause: pause applied"
    paused = rollouts.status("fraud")
    assert (paused["phase"], paused["reason"]) == ("Paused", "PausedByUser")
    assert "pausedAt" in paused

    def still_paused_at_step_2() -> None:
        now = rollouts.status("fraud")
        assert (now.get("phase"), now.get("currentStep")) == ("Paused", 1), now
        sizes = rollouts.replicas("fraud")
        assert (sizes[new][0], sizes[old][0]) == (1, 3), sizes

    # Well past the moment the 12 s pause would have ended without `pause`.
    deadline = started + timedelta(seconds=pause_seconds)
    hold_until(deadline + timedelta(seconds=8), "the pause holding", still_paused_at_step_2)
    assert "-> 2. pause 12s" in rollouts.cli("status", "fraud").stdout

    rollouts.cli("resume", "fraud")
    # The step's clock was frozen: resumed, step 2 still has the time it had left
    # (had the deadline counted on, this same reconcile would have moved past it).
    resumed = rollouts.status("fraud")
    assert resumed["phase"] == "Progressing" and resumed["currentStep"] == 1
    assert "pausedAt" not in resumed
    assert moment(resumed["stepStartedAt"]) > started + timedelta(seconds=8)

    status = rollouts.wait_status(
        "fraud", "the first indefinite pause", lambda s: s.get("currentStep") == 3, timeout=120
    )
    assert (status["phase"], status["reason"]) == ("Paused", "AwaitingPromotion")

    # Plain promote would stop again at step 6; --full skips 5 and 6.
    assert rollouts.cli("promote", "fraud", "--full").returncode == 0
    status = wait_serving(rollouts, "fraud", "2")
    assert status["stableRevision"] == new
    assert [h["version"] for h in status["history"]] == ["2", "1"]
    wait_only(rollouts, "fraud", new, 4)


def test_history_undo_to_a_revision_undo_and_list(rollouts: Rollouts) -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollouts.create(plain_canary("other", steps, replicas=1))
    rollouts.create(plain_canary("fraud", steps, replicas=2))
    revisions = {"1": wait_serving(rollouts, "fraud", "1")["stableRevision"]}
    for version in ("2", "3"):
        rollouts.patch_spec("fraud", {"model": {"version": version}})
        rollouts.wait_status(
            "fraud",
            f"version {version} at the pause",
            lambda s, v=version: (
                s.get("canaryVersion") == v and s.get("reason") == "AwaitingPromotion"
            ),
        )
        rollouts.cli("promote", "fraud")
        revisions[version] = wait_serving(rollouts, "fraud", version)["stableRevision"]

    rows = table(rollouts.cli("history", "fraud").stdout)
    assert [row[:4] for row in rows] == [
        ["3", revisions["3"], "3", "Spec"],
        ["2", revisions["2"], "2", "Spec"],
        ["1", revisions["1"], "1", "Spec"],
    ]
    assert [row[-1] == "(serving)" for row in rows] == [True, False, False]

    # --to-revision 1, where a plain undo would go to 2.
    rollouts.cli("undo", "fraud", "--to-revision", "1")
    status = wait_serving(rollouts, "fraud", "1")
    assert status["stableRevision"] == revisions["1"] and status["reason"] == "Undone"
    wait_only(rollouts, "fraud", revisions["1"], 2)
    assert rollouts.get("fraud")["spec"]["model"]["version"] == "3", "undo never edits spec"
    rows = table(rollouts.cli("history", "fraud").stdout)
    assert rows[0][:4] == ["4", revisions["1"], "1", "Undo"] and rows[0][-1] == "(serving)"
    assert [row[0] for row in rows] == ["4", "3", "2"]

    # Plain undo: back to the entry before the serving one, version 3.
    rollouts.cli("undo", "fraud")
    status = wait_serving(rollouts, "fraud", "3")
    assert status["stableRevision"] == revisions["3"]
    wait_only(rollouts, "fraud", revisions["3"], 2)

    listed = {row[0]: row for row in table(rollouts.cli("list").stdout)}
    assert set(listed) == {"fraud", "other"}
    assert listed["fraud"][1:5] == ["Healthy", "3", "-", "0%"]
    assert listed["other"][1:5] == ["Healthy", "1", "-", "0%"]


def test_status_watch_follows_a_rollout_until_healthy(rollouts: Rollouts) -> None:
    steps = [{"setWeight": 50}, {"pause": {"duration": "6s"}}]
    rollouts.create(plain_canary("watched", steps, replicas=2))
    wait_serving(rollouts, "watched", "1")
    rollouts.patch_spec("watched", {"model": {"version": "2"}})

    result = rollouts.cli("status", "watched", "--watch")
    assert result.returncode == 0
    frames = result.stdout.split("Name:      watched")[1:]
    assert len(frames) >= 2, result.stdout
    assert all("(watching; redraws every 2 s" in frame for frame in frames[:-1])
    last = frames[-1]
    assert "Phase:     Healthy" in last and "(watching;" not in last
    new = rollouts.status("watched")["stableRevision"]
    assert f"Stable:    {new}  version 2" in last
    assert "1. setWeight 50%" in last and "2. pause 6s" in last
    assert any("-> " in frame for frame in frames[:-1]), "a frame marks the current step"


def test_status_shows_the_blue_green_stage(rollouts: Rollouts) -> None:
    body = example("bluegreen")
    body["spec"]["strategy"]["blueGreen"] = {"previewReplicas": 1, "scaleDownDelaySeconds": 60}
    rollouts.create(body)
    blue = wait_serving(rollouts, "penguins", "1")["stableRevision"]
    rollouts.patch_spec("penguins", {"model": {"version": "2"}})
    green = rollouts.wait_status(
        "penguins", "a ready preview", lambda s: s.get("reason") == "AwaitingPromotion"
    )["canaryRevision"]

    shown = rollouts.cli("status", "penguins").stdout
    assert f"   1. preview: 1 replica of {green} behind penguins-preview" in shown
    assert "-> 2. awaiting promotion (`promote` to switch traffic)" in shown
    assert f"   4. switch penguins to {green}" in shown

    rollouts.cli("promote", "penguins")
    status = rollouts.wait_status(
        "penguins",
        "switched, blue waiting for its scale-down",
        lambda s: s.get("phase") == "Healthy" and bool(s.get("pendingScaleDowns")),
    )
    assert status["stableRevision"] == green
    (pending,) = status["pendingScaleDowns"]
    assert pending["revision"] == blue
    shown = rollouts.cli("status", "penguins").stdout
    assert f"   4. switched penguins to {green} at " in shown
    assert f"-> 5. scale down {blue} at {stamp(moment(pending['notBefore']))}" in shown
