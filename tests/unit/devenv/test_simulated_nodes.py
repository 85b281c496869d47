"""The README's local tour places the examples' pods on the simulated nodes with
examples/simulated-nodes-patch.json; the tests place theirs with
`on_simulated_nodes`. Both must say the same, or the tour's pods go elsewhere."""

from __future__ import annotations

import json

import pytest

from modelrollout.devenv.cluster import on_simulated_nodes
from modelrollout.devenv.tools import REPO_ROOT

pytestmark = pytest.mark.unit


def test_the_tours_patch_places_pods_where_the_tests_place_theirs() -> None:
    patch = json.loads((REPO_ROOT / "examples" / "simulated-nodes-patch.json").read_text())
    containers = [{"name": "server", "image": "x"}]
    patched = {"containers": containers, **patch["spec"]["template"]["spec"]}
    assert patched == on_simulated_nodes({"containers": containers})
    assert "simulated-nodes-patch.json" in (REPO_ROOT / "README.md").read_text()
