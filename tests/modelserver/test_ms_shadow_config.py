"""The shadow configuration file: who mirrors how much, what is refused, what is logged.

The file is written as the kubelet projects a ConfigMap (a `..data` symlink swapped
under the path), and read through `refresh()`, which the server's timer calls once a
second.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from ms_helpers import ProjectedFile

from modelserver.shadow_config import (
    ShadowConfigError,
    ShadowConfigFile,
    ShadowPlan,
    mirrored_percent,
    parse_plan,
)

pytestmark = pytest.mark.unit

URL = "http://challenger:80"

ME, OTHER = "rev-a", "rev-b"


def plan(percent: object = 25, champion: object = ME, challenger: object = OTHER) -> str:
    return json.dumps({"percent": percent, "champion": champion, "challenger": challenger})


@pytest.fixture
def projected(tmp_path: Path) -> ProjectedFile:
    return ProjectedFile(tmp_path / "shadow", "shadow.json")


def shadow_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "modelserver.shadow"]


def test_only_the_champion_mirrors_and_only_a_positive_percent() -> None:
    assert mirrored_percent(ShadowPlan(25.0, ME, OTHER), ME, URL).percent == 25.0
    assert mirrored_percent(ShadowPlan(100.0, ME, OTHER), ME, URL).percent == 100.0
    assert mirrored_percent(ShadowPlan(25.0, OTHER, ME), ME, URL).percent == 0.0
    assert mirrored_percent(ShadowPlan(0.0, ME, OTHER), ME, URL).percent == 0.0
    # A server the operator did not start has no revision; an empty champion is no one.
    assert mirrored_percent(ShadowPlan(25.0, "", OTHER), "", URL).percent == 0.0
    same = mirrored_percent(ShadowPlan(25.0, ME, ME), ME, URL)
    assert (same.percent, same.problem) == (0.0, True)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not JSON"),
        ("[25]", "not a JSON object"),
        (plan(percent=150), "'percent' is 150, outside 0 to 100"),
        (plan(percent=-1), "outside 0 to 100"),
        (plan(percent="25"), "'percent' must be a number"),
        (plan(percent=True), "'percent' must be a number"),
        (json.dumps({"champion": ME, "challenger": OTHER}), "'percent' must be a number"),
        (plan(champion=7), "must be revision names"),
        (json.dumps({"percent": 5, "champion": ME}), "must be revision names"),
        ("x" * 70_000, "larger than 65536 bytes"),
    ],
    ids=[
        "not-json", "not-an-object", "over-100", "negative", "string-percent", "bool-percent",
        "no-percent", "numeric-champion", "no-challenger", "oversized",
    ],
)  # fmt: skip
def test_a_malformed_file_means_no_mirroring_and_says_why(
    projected: ProjectedFile, caplog: pytest.LogCaptureFixture, text: str, problem: str
) -> None:
    config = ShadowConfigFile(str(projected.path), ME, URL)
    projected.write(text)
    with caplog.at_level(logging.INFO, logger="modelserver.shadow"):
        state = config.refresh()
    assert state.percent == 0.0
    assert state.problem
    [(level, message)] = shadow_logs(caplog)
    assert level == logging.WARNING
    assert "malformed shadow configuration" in message
    assert problem in message


def test_each_state_is_logged_once_however_often_the_file_is_read(
    projected: ProjectedFile, caplog: pytest.LogCaptureFixture
) -> None:
    config = ShadowConfigFile(str(projected.path), ME, URL)
    with caplog.at_level(logging.INFO, logger="modelserver.shadow"):
        for _ in range(3):
            assert config.refresh().percent == 0.0  # no file yet
        projected.write(plan(25))
        for _ in range(3):
            assert config.refresh().percent == 25.0
        projected.write("{broken")
        config.refresh()
        projected.write("{broken again")  # the same problem, in another file: not again
        config.refresh()
        projected.write(plan(500))  # another problem
        config.refresh()
        config.refresh()
        projected.write(plan(25, champion=OTHER, challenger=ME))
        for _ in range(3):
            assert config.refresh().percent == 0.0
    messages = [message for _, message in shadow_logs(caplog)]
    assert len(messages) == 5, messages
    assert "no shadow configuration at" in messages[0]
    assert messages[1] == "mirroring 25% of requests to the challenger 'rev-b'"
    assert "not JSON" in messages[2]
    assert "'percent' is 500" in messages[3]
    assert "'rev-a' is not the champion 'rev-b'" in messages[4]


def test_a_swapped_projection_is_read_again_and_an_unchanged_one_is_not(
    projected: ProjectedFile,
) -> None:
    config = ShadowConfigFile(str(projected.path), ME, URL)
    projected.write(plan(10))
    assert config.refresh().percent == 10.0
    # Rewritten behind the link to the same size and mtime: a stat cannot tell, so the
    # file is not read again (the kubelet always swaps a new directory in instead).
    target = projected.path.resolve()
    stat = target.stat()
    target.write_text(plan(20))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert config.refresh().percent == 10.0
    projected.write(plan(20))
    assert config.refresh().percent == 20.0
    projected.write(plan(0))
    assert config.refresh().percent == 0.0


def test_a_file_that_goes_away_stops_mirroring(projected: ProjectedFile) -> None:
    config = ShadowConfigFile(str(projected.path), ME, URL)
    projected.write(plan(50))
    assert config.refresh().percent == 50.0
    projected.path.unlink()
    state = config.refresh()
    assert state.percent == 0.0
    assert "no shadow configuration" in state.reason


def test_the_operators_file_names_the_challengers_address_and_percent_0_needs_nothing_else() -> (
    None
):
    plan = parse_plan(
        b'{"percent": 25, "champion": "a1", "challenger": "b2", "url": "http://10.96.0.9:80"}'
    )
    assert plan == ShadowPlan(25.0, "a1", "b2", "http://10.96.0.9:80")
    assert mirrored_percent(plan, "a1").url == "http://10.96.0.9:80", "the file's address wins"
    no_address = mirrored_percent(ShadowPlan(25.0, "a1", "b2"), "a1")
    assert no_address.percent == 0.0 and "names no url" in no_address.reason
    assert parse_plan(b'{"percent": 0}') == ShadowPlan(0.0, "", "")
    with pytest.raises(ShadowConfigError, match="'url' must be an http"):
        parse_plan(b'{"percent": 5, "champion": "a", "challenger": "b", "url": "ftp://x"}')
