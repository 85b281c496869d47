"""History remembers the registry version (digest, dataset, card metrics) each
revision served, and `undo` goes back to exactly that one."""

from __future__ import annotations

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.api import RegistryVersion

pytestmark = pytest.mark.unit


def _version(number: str, accuracy: float) -> RegistryVersion:
    return RegistryVersion(
        name="churn-model",
        version=number,
        sha256=number * 64,
        dataset_sha256=f"{number}d" * 32,
        dataset_rows=1000 + int(number),
        task="classification",
        metrics={"accuracy": accuracy},
    )


def _registry_rollout(world: World, registered: RegistryVersion) -> None:
    world.registry = registered
    world.change_spec(model={"version": registered.version})
    world.plan()
    world.send("promote", full=True)
    world.settle()
    assert world.status.stable_version == registered.version


def test_each_promotion_records_its_registry_version_and_undo_keeps_it() -> None:
    world = deployed(make_spec())
    first, second = _version("2", 0.91), _version("3", 0.94)
    _registry_rollout(world, first)
    _registry_rollout(world, second)
    assert [e.registry for e in world.status.history[:2]] == [second, first]

    number = world.status.history[1].number
    world.registry = second  # the spec still resolves to version 3
    world.send("undo", toRevision=number)
    world.settle()
    assert world.status.stable_version == "2"
    serving = world.status.history[0]
    assert serving.source == "Undo"
    assert serving.registry == first  # the exact version, dataset and metrics it served


def test_undo_to_an_older_revision_pins_its_registry_version_while_the_spec_resolves_newer() -> (
    None
):
    world = deployed(make_spec())
    versions = [_version("2", 0.91), _version("3", 0.94), _version("4", 0.95)]
    for registered in versions:
        _registry_rollout(world, registered)
    newest_revision = world.status.stable_revision
    oldest = next(e for e in world.status.history if e.registry == versions[0])
    assert oldest.number != world.status.history[1].number  # not what a plain undo picks

    world.send("undo", toRevision=oldest.number)
    world.settle()
    assert world.status.stable_version == "2"
    assert world.status.stable_revision == oldest.revision
    assert world.routes["main"] == oldest.revision
    assert world.status.history[0].registry == versions[0]
    # The spec still resolves to version 4: its revision is held, so version 2 stays
    # served (and is what the champion alias moves to) until the spec or `retry`.
    assert world.status.hold is not None and world.status.hold.revision == newest_revision
    world.settle()
    assert world.status.stable_version == "2" and world.replicas()[newest_revision] == 0
