"""Fixtures shared by the test tiers. The local cluster is started once per
session, only when a test asks for it, and torn down however the session ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelrollout.devenv.tools import REPO_ROOT
from support.kube import ClusterUnderTest, fresh_namespace, running_test_cluster
from support.operator import OperatorProcess, running_operator

# support.tiers: a test without exactly one tier marker fails every run;
# pytester: the fixture tests/unit/test_tiers.py runs that check with.
pytest_plugins = ("support.tiers", "pytester")

CRD_DIR = REPO_ROOT / "crds"
CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def kube() -> Iterator[ClusterUnderTest]:
    with running_test_cluster() as test_cluster:
        yield test_cluster


@pytest.fixture
def namespace(kube: ClusterUnderTest) -> Iterator[str]:
    with fresh_namespace(kube) as name:
        yield name


@pytest.fixture(scope="session")
def crds(kube: ClusterUnderTest) -> ClusterUnderTest:
    """The project's CRDs (crds/*.yaml) installed and established."""
    for manifest in sorted(CRD_DIR.glob("*.yaml")):
        kube.kubectl("apply", "--server-side", "-f", str(manifest))
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    return kube


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def operator(
    request: pytest.FixtureRequest,
    crds: ClusterUnderTest,
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The real operator watching this test's namespace; its log is shown on failure.
    A module's OPERATOR_ENV adds to its environment (e.g. a faster registry poll)."""
    log_dir = tmp_path_factory.mktemp("operator")
    env = getattr(request.module, "OPERATOR_ENV", None)
    with running_operator(crds, namespace, log_dir, env) as process:
        yield process
    if request.node.stash.get(CALL_FAILED, False):
        print(f"--- operator log ({process.log_path}) ---\n{process.log()[-20000:]}")
