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
