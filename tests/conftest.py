"""Fixtures shared by the test tiers. The local cluster is started once per
session, only when a test asks for it, and torn down however the session ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.kube import ClusterUnderTest, fresh_namespace, running_test_cluster


@pytest.fixture(scope="session")
def kube() -> Iterator[ClusterUnderTest]:
    with running_test_cluster() as test_cluster:
        yield test_cluster


@pytest.fixture
def namespace(kube: ClusterUnderTest) -> Iterator[str]:
    with fresh_namespace(kube) as name:
        yield name
