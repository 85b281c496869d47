"""Whatever the challenger does, clients get the champion's answers, all of them, at
once: a challenger that holds copies, is slow, down, answers errors or lies about the
rows; and a server without a challenger URL mirrors nothing (shadow_helpers has the
servers and the stub challenger).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ms_helpers import ProjectedFile, label, metric_samples, running_server
from shadow_helpers import (
    CHAMPION,
    HeldChallenger,
    champion_server,
    mirroring,
    outcomes,
    plan,
    predicted,
    send,
    settled,
    shadow,
)

from modelrollout.devenv.ports import free_port
from support.waiting import wait_for

pytestmark = pytest.mark.integration


def test_copies_in_flight_are_bounded_and_clients_never_wait_for_them(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    wine = models["wine-improved"]
    ids = [f"held-{i}" for i in range(20)]
    with (
        HeldChallenger() as stub,
        champion_server(
            wine, tmp_path, stub.url,
            MODELSERVER_SHADOW_MAX_IN_FLIGHT="4", MODELSERVER_SHADOW_TIMEOUT_SECONDS="30",
        ) as (champion, config),
    ):  # fmt: skip
        config.write(plan(100))
        mirroring(champion, 100.0)
        # Every answer comes back while the challenger still holds the first copies.
        assert send(champion, ids) == predicted(wine, ids)
        assert not stub.release.is_set()
        wait_for(lambda: stub.held == 4, timeout=10, what="the challenger to hold 4 copies")
        assert outcomes(champion)["dropped"] == 16
        assert shadow(champion, "in_flight") == 4
        stub.release.set()
        seen = settled(champion)
        assert stub.most_held == 4
    # The held copies got an HTML page: not an answer, so failed.
    assert seen == {"compared": 0.0, "dropped": 16.0, "failed": 4.0, "timeout": 0.0}


def test_a_slow_challenger_times_out_and_is_logged_once(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    wine = models["wine-improved"]
    ids = [f"slow-{i}" for i in range(10)]
    with (
        HeldChallenger() as stub,
        champion_server(wine, tmp_path, stub.url, MODELSERVER_SHADOW_TIMEOUT_SECONDS="0.3") as (
            champion,
            config,
        ),
    ):
        config.write(plan(100))
        mirroring(champion, 100.0)
        assert send(champion, ids) == predicted(wine, ids)
        seen = settled(champion)
        failing = [line for line in champion.log_lines() if "shadow copies failing" in line["msg"]]
    assert seen == {"compared": 0.0, "dropped": 0.0, "failed": 0.0, "timeout": 10.0}
    assert [line["msg"] for line in failing] == [
        "shadow copies failing: no answer within 0.3 s; counted, clients unaffected"
    ]


# The champion takes bodies of up to 4000 bytes here (a one-row request is about 1000),
# and reads no larger answer.
MAX_BODY = 4000
BAD_REPLIES = {
    "error-status": (503, b'{"error": "overloaded"}'),
    "wrong-rows": (200, b'{"outputs": [{"name": "predict", "data": ["class_0", "class_1"]}]}'),
    "oversized": (
        200,
        b'{"outputs": [{"name": "predict", "data": ["class_0"]}], "pad": "%s"}' % (b"x" * MAX_BODY),
    ),
    "down": (200, b""),  # never asked: nothing listens where the champion sends
}


@pytest.mark.parametrize("kind", sorted(BAD_REPLIES))
def test_a_challenger_that_is_down_or_answers_badly_costs_clients_nothing(
    models: dict[str, dict[str, Any]], tmp_path: Path, kind: str
) -> None:
    wine = models["wine-improved"]
    ids = [f"{kind}-{i}" for i in range(10)]
    with HeldChallenger(*BAD_REPLIES[kind]) as stub:
        stub.release.set()
        url = f"http://127.0.0.1:{free_port()}" if kind == "down" else stub.url
        with champion_server(wine, tmp_path, url, MODELSERVER_MAX_BODY_BYTES=str(MAX_BODY)) as (
            champion,
            config,
        ):
            config.write(plan(100))
            mirroring(champion, 100.0)
            assert send(champion, ids) == predicted(wine, ids)
            seen = settled(champion)
            # The version is known when something answered.
            version = "" if kind == "down" else "2"
            failed = shadow(
                champion, "requests_total", outcome="failed", challenger_version=version
            )
    assert seen["failed"] == failed == 10.0
    assert seen["compared"] == seen["timeout"] == seen["dropped"] == 0.0


def test_without_a_challenger_url_nothing_is_mirrored(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    config = ProjectedFile(tmp_path / "shadow", "shadow.json")
    config.write(plan(100))  # this server is named champion, at 100%
    with running_server(
        models["wine-improved"],
        tmp_path,
        MODELROLLOUT_REVISION=CHAMPION,
        MODELSERVER_SHADOW_CONFIG_FILE=str(config.path),
    ) as server:
        send(server, [f"alone-{i}" for i in range(10)])
        text = server.metrics()
        lines = server.log_lines()
    assert label(metric_samples(text, "modelserver_shadow_mirror_percent")) == 0.0
    assert metric_samples(text, "modelserver_shadow_requests_total") == {}
    said = [line["msg"] for line in lines if "mirror" in line["msg"]]
    assert said == [
        "not mirroring: the shadow configuration names no url and MODELSERVER_SHADOW_URL is empty"
    ], "said once, why"
