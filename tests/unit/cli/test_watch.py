"""`status --watch` stops once the operator has acted on the object's current
spec and settled, never on a Healthy status left over from the previous spec."""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.cli.kube import Session
from modelrollout.cli.status import watch, watch_outcome

pytestmark = pytest.mark.unit

SPEC = {
    "replicas": 2,
    "model": {"name": "m", "version": "2"},
    "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
    "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
}


def body(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud", "namespace": "ml", "generation": generation},
        "spec": SPEC,
        **({"status": status} if status is not None else {}),
    }


@pytest.mark.parametrize(
    ("generation", "status", "outcome"),
    [
        pytest.param(2, {"phase": "Healthy", "observedGeneration": 2}, 0, id="healthy"),
        pytest.param(2, {"phase": "Degraded", "observedGeneration": 2}, 1, id="degraded"),
        pytest.param(
            3, {"phase": "Healthy", "observedGeneration": 2}, None,
            id="healthy for the previous spec",
        ),
        pytest.param(
            3, {"phase": "Degraded", "observedGeneration": 2}, None,
            id="degraded for the previous spec",
        ),
        pytest.param(3, {"phase": "Healthy"}, None, id="no observedGeneration yet"),
        pytest.param(
            2, {"phase": "Progressing", "observedGeneration": 2}, None, id="progressing"
        ),
        pytest.param(2, {"phase": "Paused", "observedGeneration": 2}, None, id="paused"),
        pytest.param(1, None, None, id="no status yet"),
        pytest.param(
            2, {"phase": "NoSuchPhase", "observedGeneration": 2}, None,
            id="a status no operator wrote",
        ),
    ],
)  # fmt: skip
def test_watch_outcome(generation: int, status: dict[str, Any] | None, outcome: int | None) -> None:
    assert watch_outcome(body(generation, status)) == outcome


class ScriptedSession(Session):
    """Answers each get() with the next object of a script, as the API server
    would while the operator works; counts the reads."""

    def __init__(self, script: list[dict[str, Any]]) -> None:
        super().__init__(api=None, namespace="ml")  # type: ignore[arg-type]
        self.script = script
        self.reads = 0

    def get(self, name: str) -> dict[str, Any]:
        answer = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        return answer

    def replicas(self, name: str) -> dict[str, tuple[int, int]]:
        return {}

    def pods(self, name: str) -> dict[str, Any]:
        return {}

    def events(self, name: str, limit: int) -> list[Any]:
        return []


def test_watch_right_after_a_spec_change_waits_for_the_operator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = ScriptedSession(
        [
            # `kubectl patch` bumped the generation; status still says Healthy (for 1).
            body(2, {"phase": "Healthy", "observedGeneration": 1, "stableVersion": "1"}),
            body(2, {"phase": "Progressing", "observedGeneration": 2, "canaryRevision": "b"}),
            body(2, {"phase": "Healthy", "observedGeneration": 2, "stableVersion": "2"}),
        ]
    )
    pauses: list[float] = []
    assert watch(session, "fraud", interval=2.0, sleep=pauses.append) == 0
    assert session.reads == 3 and pauses == [2.0, 2.0]
    shown = capsys.readouterr().out
    assert "spec generation 2 not acted on yet" in shown
    assert shown.count("(watching; redraws every 2 s") == 2


def test_watch_exits_1_once_degraded_for_the_current_spec() -> None:
    session = ScriptedSession(
        [
            body(5, {"phase": "Degraded", "observedGeneration": 4}),
            body(5, {"phase": "Degraded", "observedGeneration": 5, "reason": "RolledBack"}),
        ]
    )
    assert watch(session, "fraud", sleep=lambda _s: None) == 1
    assert session.reads == 2
