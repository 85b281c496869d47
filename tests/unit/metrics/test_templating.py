"""Query templating: exactly the README's template variables, the measured side, escaping."""

from __future__ import annotations

import pytest

from modelrollout.api.spec import QUERY_VARIABLES
from modelrollout.metrics import render
from modelrollout.metrics.templating import TemplateError
from modelrollout.rollout.query_variables import QueryContext, promql_duration, variables

pytestmark = pytest.mark.unit

CONTEXT = QueryContext(
    namespace="ml",
    name="fraud",
    canary_revision="9a1b2e",
    canary_version="7",
    stable_revision="5d8f7c",
    stable_version="6",
    interval_seconds=30,
)


def test_every_design_variable_is_filled() -> None:
    assert set(variables(CONTEXT, "canary")) == QUERY_VARIABLES


@pytest.mark.parametrize(
    ("side", "revision", "version"),
    [("canary", "9a1b2e", "7"), ("stable", "5d8f7c", "6")],
)
def test_version_and_revision_name_the_measured_side(
    side: str, revision: str, version: str
) -> None:
    query = (
        "{{ namespace }}/{{name}} {{ revision }} {{ version }} "
        "{{ canaryRevision }} {{ canaryVersion }} {{ stableRevision }} {{ stableVersion }} "
        "[{{ interval }}]"
    )
    rendered = render(query, variables(CONTEXT, side))  # type: ignore[arg-type]
    assert rendered == f"ml/fraud {revision} {version} 9a1b2e 7 5d8f7c 6 [30s]"


def test_values_are_escaped_for_promql_strings() -> None:
    context = QueryContext("ml", "m", "r", 'v"1\\', "s", "6", 30)
    rendered = render('x{v="{{ version }}"}', variables(context, "canary"))
    assert rendered == 'x{v="v\\"1\\\\"}'


def test_an_unknown_variable_is_an_error_not_left_in_the_query() -> None:
    with pytest.raises(TemplateError, match="modelVersion"):
        render("x{v='{{ modelVersion }}'}", variables(CONTEXT, "canary"))


@pytest.mark.parametrize(
    ("seconds", "duration"), [(30, "30s"), (90, "90s"), (1.5, "1500ms"), (0.25, "250ms")]
)
def test_interval_is_a_promql_duration(seconds: float, duration: str) -> None:
    assert promql_duration(seconds) == duration
