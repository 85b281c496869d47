"""What the Gateway API router writes into a user's HTTPRoute: only the weights
and rules it owns, everything else as the user wrote it, and what the gateway's
status says about the route."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from modelrollout.api import HeaderMatch, HeaderRoute
from modelrollout.traffic import httproute

pytestmark = pytest.mark.unit

REFS = httproute.Backends(stable="fraud", canary="fraud-canary", namespace="ml")
OTHER_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
    "filters": [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"add": [{"name": "x", "value": "1"}]},
        }
    ],
    "backendRefs": [{"group": "", "kind": "Service", "name": "admin", "port": 80, "weight": 1}],
}
MODEL_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/v2"}, "method": "POST"}],
    "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "models.internal"}}],
    "backendRefs": [{"group": "", "kind": "Service", "name": "fraud", "port": 80, "weight": 1}],
}


def user_route(*rules: dict[str, Any], generation: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": "fraud-route",
            "namespace": "ml",
            "generation": generation,
            "resourceVersion": "41",
            "annotations": {"team": "fraud"},
        },
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["fraud.example"],
            "rules": [copy.deepcopy(r) for r in rules or (OTHER_RULE, MODEL_RULE)],
        },
    }


def test_weights_touch_only_the_refs_the_operator_owns() -> None:
    route = user_route()
    edited = httproute.with_split(route, "fraud", REFS, 95, 5)
    other, model = edited["spec"]["rules"]
    assert other == OTHER_RULE, "a rule that does not send to fraud stays byte for byte"
    assert model["matches"] == MODEL_RULE["matches"] and model["filters"] == MODEL_RULE["filters"]
    assert model["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "fraud", "port": 80, "weight": 95},
        {"group": "", "kind": "Service", "name": "fraud-canary", "port": 80, "weight": 5},
    ]
    assert httproute.split(edited, "fraud", REFS) == (95, 5)
    assert edited["spec"]["hostnames"] == ["fraud.example"] and route == user_route()


def test_an_added_canary_ref_is_removed_again_and_a_users_one_is_kept_at_zero() -> None:
    added = httproute.with_split(user_route(), "fraud", REFS, 90, 10)
    back = httproute.with_split(added, "fraud", REFS, 100, 0)
    assert back["spec"]["rules"][1]["backendRefs"] == [
        {**MODEL_RULE["backendRefs"][0], "weight": 100}
    ]
    assert httproute.ROUTING_ANNOTATION not in back["metadata"]["annotations"]
    assert httproute.split(back, "fraud", REFS) == (100, 0)

    written = copy.deepcopy(MODEL_RULE)
    written["backendRefs"].append({"name": "fraud-canary", "port": 80, "weight": 0})
    users = httproute.with_split(user_route(OTHER_RULE, written), "fraud", REFS, 80, 20)
    kept = httproute.with_split(users, "fraud", REFS, 100, 0)
    assert kept["spec"]["rules"][1]["backendRefs"][1] == {
        "name": "fraud-canary",
        "port": 80,
        "weight": 0,
    }


def test_the_apply_body_is_the_rules_and_the_operators_annotation_only() -> None:
    edited = httproute.with_split(user_route(), "fraud", REFS, 95, 5)
    body = httproute.apply_body(edited)
    assert body["metadata"] == {
        "name": "fraud-route",
        "namespace": "ml",
        "resourceVersion": "41",
        "annotations": {
            httproute.ROUTING_ANNOTATION: json.dumps({"fraud": {"canaryRef": "added"}})
        },
    }
    assert set(body["spec"]) == {"rules"}, "parents and hostnames are the user's to own"


def test_header_routes_copy_each_model_rule_with_the_headers_added() -> None:
    team = HeaderRoute(
        name="team",
        match=(
            HeaderMatch(header_name="x-team", header_value="ml"),
            HeaderMatch(cookie_name="canary", cookie_value="always"),
        ),
    )
    edited = httproute.with_header_routes(user_route(), "fraud", REFS, [team])
    other, model, header_rule = edited["spec"]["rules"]
    assert (other, model) == (OTHER_RULE, MODEL_RULE)
    assert header_rule["name"] == "modelrollout-fraud-team"
    assert header_rule["filters"] == MODEL_RULE["filters"]
    assert header_rule["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/v2"},
            "method": "POST",
            "headers": [
                {"type": "Exact", "name": "x-team", "value": "ml"},
                {
                    "type": "RegularExpression",
                    "name": "Cookie",
                    "value": "(^|;\\s*)canary=always(;|$)",
                },
            ],
        }
    ]
    assert header_rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "fraud-canary", "port": 80, "weight": 1}
    ]
    assert httproute.header_routes(edited, "fraud") == ("team",)
    removed = httproute.with_header_routes(edited, "fraud", REFS, [])
    assert removed["spec"] == user_route()["spec"]
    assert httproute.header_routes(removed, "fraud") == ()


def status(generation: int, **conditions: str) -> dict[str, Any]:
    return {
        "parents": [
            {
                "parentRef": {"name": "gw"},
                "controllerName": "example.com/gateway",
                "conditions": [
                    {
                        "type": kind,
                        "status": value,
                        "reason": "BackendNotFound" if value == "False" else kind,
                        "message": "service ml/fraud-canary not found" if value == "False" else "",
                        "observedGeneration": generation,
                    }
                    for kind, value in conditions.items()
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    ("route", "verdict", "words"),
    [
        (None, "no", "HTTPRoute ml/fraud-route not found"),
        (user_route(OTHER_RULE), "no", "no rule with a backendRef to Service ml/fraud"),
        (user_route(), "unknown", "no gateway controller reports"),
        (
            {**user_route(), "status": status(2, Accepted="True", ResolvedRefs="True")},
            "unknown",
            "for generation 3",
        ),
        (
            {**user_route(), "status": status(3, Accepted="True", ResolvedRefs="False")},
            "no",
            "parent ml/gw (example.com/gateway): ResolvedRefs=False (BackendNotFound): "
            "service ml/fraud-canary not found",
        ),
        ({**user_route(), "status": status(3, Accepted="True", ResolvedRefs="True")}, "yes", ""),
    ],
)
def test_the_route_check_says_yes_no_or_cannot_tell(
    route: dict[str, Any] | None, verdict: str, words: str
) -> None:
    found = httproute.check(route, "fraud-route", "ml", "fraud", REFS)
    assert found.verdict == verdict
    assert words in found.message


def test_a_route_all_on_stable_is_not_rewritten_for_weight_zero() -> None:
    route = user_route()
    assert httproute.with_split(route, "fraud", REFS, 100, 0) == route
