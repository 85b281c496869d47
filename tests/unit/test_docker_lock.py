"""docker/requirements-*.txt are what docker/lock.py makes of the tested environment
(a stale file fails here, naming the command), and the operator's closure holds no
ML library: the operator image stays lean."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

LOCK = Path(__file__).resolve().parents[2] / "docker" / "lock.py"


@pytest.fixture(scope="module")
def lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_lock", LOCK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("file", ["requirements-operator.txt", "requirements-modelserver.txt"])
def test_the_pinned_requirements_are_current(lock: ModuleType, file: str) -> None:
    expected = lock.render(lock.LOCKS[file])
    assert (LOCK.parent / file).read_text() == expected, (
        f"docker/{file} is stale: run .venv/bin/python docker/lock.py"
    )


def test_the_operator_closure_is_lean_and_inside_the_model_servers(lock: ModuleType) -> None:
    operator = lock.closure(lock.LOCKS["requirements-operator.txt"])
    modelserver = lock.closure(lock.LOCKS["requirements-modelserver.txt"])
    assert {"kopf", "kubernetes", "pydantic", "prometheus-api-client", "requests"} <= set(operator)
    ml = {"numpy", "scipy", "scikit-learn", "pandas", "skops", "palmerpenguins", "onnxruntime"}
    assert not ml & set(operator)
    assert ml <= set(modelserver)
    assert operator.items() <= modelserver.items()
