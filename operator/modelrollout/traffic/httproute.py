"""How the Gateway API router edits a user's HTTPRoute, as pure functions over
the object the API server returned (dicts in, dicts out).

The route is the user's: the operator owns only the weights of the backendRefs
to `<name>` (the stable Service) and `<name>-canary` in the rules that send
traffic to `<name>` ("managed rules"), the canary backendRef when it added it,
and the header rules it adds (named `modelrollout-<name>-<header route>`).
Everything else (other rules, matches, filters, hostnames, parents) is written
back exactly as read. `rules` and `backendRefs` are atomic lists in the
HTTPRoute schema, so server-side apply cannot own one weight inside them: the
router reads the route, changes only those fields, and applies the whole
`spec.rules` under its field manager with the resourceVersion it read (a
concurrent edit makes the apply fail with a conflict and the next reconcile
starts again from what is there).

What the operator added is remembered on the route itself, in the annotation
ROUTING_ANNOTATION written in the same apply: `{"<md name>": {"canaryRef":
"added", "headerRoutes": [...]}}`, so a restarted operator removes exactly
what it added, and nothing a user wrote.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from modelrollout.api import HeaderMatch, HeaderRoute
from modelrollout.api import names as n
from modelrollout.api.reasons import Reason
from modelrollout.rollout import RouteCheck

GROUP: Final = "gateway.networking.k8s.io"
VERSION: Final = "v1"
PLURAL: Final = "httproutes"
ROUTING_ANNOTATION: Final = f"{n.GROUP}/routing"
HEADER_RULE_PREFIX: Final = "modelrollout-"
# The HTTPRoute schema's bounds: a rule's backendRefs, a match's headers.
MAX_BACKEND_REFS: Final = 16
MAX_HEADERS: Final = 16
DEFAULT_MATCH: Final = {"path": {"type": "PathPrefix", "value": "/"}}

Route = Mapping[str, Any]


@dataclass(frozen=True)
class Backends:
    """The two Services the managed rules weight, and the route's namespace."""

    stable: str
    canary: str
    namespace: str


def route_label(route: Route) -> str:
    metadata = route.get("metadata") or {}
    return f"HTTPRoute {metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _is_service_ref(ref: Mapping[str, Any], service: str, namespace: str, route_ns: str) -> bool:
    return (
        ref.get("name") == service
        and (ref.get("group") or "") == ""
        and (ref.get("kind") or "Service") == "Service"
        and (ref.get("namespace") or route_ns) == namespace
    )


def _rules(route: Route) -> list[dict[str, Any]]:
    return list((route.get("spec") or {}).get("rules") or [])


def _namespace(route: Route) -> str:
    return str((route.get("metadata") or {}).get("namespace") or "")


def is_header_rule(rule: Mapping[str, Any], md_name: str) -> bool:
    return str(rule.get("name") or "").startswith(f"{HEADER_RULE_PREFIX}{md_name}-")


def managed_rules(route: Route, md_name: str, backends: Backends) -> list[int]:
    """Indexes of the user's rules that send traffic to the stable Service."""
    route_ns = _namespace(route)
    return [
        index
        for index, rule in enumerate(_rules(route))
        if not is_header_rule(rule, md_name)
        and any(
            _is_service_ref(ref, backends.stable, backends.namespace, route_ns)
            for ref in rule.get("backendRefs") or []
        )
    ]


def state(route: Route, md_name: str) -> dict[str, Any]:
    """What the operator added to this route for `md_name` (see ROUTING_ANNOTATION)."""
    raw = ((route.get("metadata") or {}).get("annotations") or {}).get(ROUTING_ANNOTATION)
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {}
    entry = parsed.get(md_name) if isinstance(parsed, dict) else None
    return dict(entry) if isinstance(entry, dict) else {}


def split(route: Route, md_name: str, backends: Backends) -> tuple[int, int] | None:
    """(stable, canary) percent the managed rules carry; None when they disagree
    or there are none. A missing canary backendRef is 0."""
    route_ns = _namespace(route)
    seen = set()
    for index in managed_rules(route, md_name, backends):
        refs = _rules(route)[index].get("backendRefs") or []
        stable = sum(
            int(r.get("weight", 1))
            for r in refs
            if _is_service_ref(r, backends.stable, backends.namespace, route_ns)
        )
        canary = sum(
            int(r.get("weight", 1))
            for r in refs
            if _is_service_ref(r, backends.canary, backends.namespace, route_ns)
        )
        total = stable + canary
        seen.add(
            (round(100 * stable / total), 100 - round(100 * stable / total)) if total else (0, 0)
        )
    return next(iter(seen)) if len(seen) == 1 else None


def header_routes(route: Route, md_name: str) -> tuple[str, ...]:
    """The header routes the operator added for `md_name` whose rules are there."""
    names = state(route, md_name).get("headerRoutes") or []
    present = {str(rule.get("name")) for rule in _rules(route)}
    return tuple(
        sorted(
            str(name)
            for name in names
            if any(p.startswith(header_rule_name(md_name, str(name))) for p in present)
        )
    )


def header_rule_name(md_name: str, header_route: str, index: int | None = None) -> str:
    base = f"{HEADER_RULE_PREFIX}{md_name}-{header_route}"
    return base if index is None else f"{base}-{index}"


def with_split(
    route: Route, md_name: str, backends: Backends, stable_weight: int, canary_weight: int
) -> dict[str, Any]:
    """The route with the managed rules weighted `stable_weight`/`canary_weight`.

    The canary backendRef is added (and remembered) where a rule lacks it and the
    canary gets traffic; one the operator added is removed again at weight 0, one
    the user wrote is set to 0 and kept. A route that already sends everything to
    stable is not rewritten for weight 0, so a route is first written by a rollout.
    """
    entry = state(route, md_name)
    added = entry.get("canaryRef") == "added"
    if canary_weight == 0 and not added and split(route, md_name, backends) == (100, 0):
        return dict(route)  # already all on stable, as the user wrote it: nothing to own
    edited = copy.deepcopy(dict(route))
    rules = _rules(edited)
    route_ns = _namespace(route)
    for index in managed_rules(route, md_name, backends):
        rule = dict(rules[index])
        refs = [dict(ref) for ref in rule.get("backendRefs") or []]
        stable_ref = next(
            r for r in refs if _is_service_ref(r, backends.stable, backends.namespace, route_ns)
        )
        canary_refs = [
            r for r in refs if _is_service_ref(r, backends.canary, backends.namespace, route_ns)
        ]
        for ref in refs:
            if _is_service_ref(ref, backends.stable, backends.namespace, route_ns):
                ref["weight"] = stable_weight
            elif _is_service_ref(ref, backends.canary, backends.namespace, route_ns):
                ref["weight"] = canary_weight
        if not canary_refs and canary_weight > 0:
            refs.append(_canary_ref(stable_ref, backends.canary, canary_weight))
            added = True
        elif canary_weight == 0 and added:
            refs = [
                r
                for r in refs
                if not _is_service_ref(r, backends.canary, backends.namespace, route_ns)
            ]
        rule["backendRefs"] = refs
        rules[index] = rule
    if canary_weight == 0:
        added = False
    edited.setdefault("spec", {})["rules"] = rules
    return _with_state(edited, md_name, {**entry, "canaryRef": "added" if added else None})


def _canary_ref(stable_ref: Mapping[str, Any], canary: str, weight: int) -> dict[str, Any]:
    ref = {key: value for key, value in stable_ref.items() if key not in ("filters", "weight")}
    return {**ref, "name": canary, "weight": weight}


def with_header_routes(
    route: Route, md_name: str, backends: Backends, wanted: Sequence[HeaderRoute]
) -> dict[str, Any]:
    """The route with exactly `wanted` header rules for `md_name`: for each managed
    rule, a copy whose every match also requires the header route's headers, and
    whose only backend is the canary Service. Appended after the user's rules;
    Gateway API gives a match with more headers precedence, so matching requests
    take it whatever the order."""
    edited = copy.deepcopy(dict(route))
    kept = [rule for rule in _rules(edited) if not is_header_rule(rule, md_name)]
    edited.setdefault("spec", {})["rules"] = kept
    managed = managed_rules(edited, md_name, backends)
    route_ns = _namespace(route)
    added: list[dict[str, Any]] = []
    for header_route in wanted:
        for position, index in enumerate(managed):
            rule = kept[index]
            stable_ref = next(
                r
                for r in rule.get("backendRefs") or []
                if _is_service_ref(r, backends.stable, backends.namespace, route_ns)
            )
            copied: dict[str, Any] = {
                key: copy.deepcopy(value)
                for key, value in rule.items()
                if key not in ("name", "backendRefs", "matches")
            }
            copied["name"] = header_rule_name(
                md_name, header_route.name, position if len(managed) > 1 else None
            )
            copied["matches"] = [
                _with_headers(match, header_route.match)
                for match in rule.get("matches") or [DEFAULT_MATCH]
            ]
            copied["backendRefs"] = [_canary_ref(stable_ref, backends.canary, 1)]
            added.append(copied)
    edited["spec"]["rules"] = kept + added
    names = sorted(route.name for route in wanted)
    return _with_state(edited, md_name, {**state(route, md_name), "headerRoutes": names or None})


def _with_headers(match: Mapping[str, Any], wanted: Sequence[HeaderMatch]) -> dict[str, Any]:
    headers = [dict(h) for h in match.get("headers") or []]
    headers += [_header(item) for item in wanted]
    return {**copy.deepcopy(dict(match)), "headers": headers}


def _header(item: HeaderMatch) -> dict[str, str]:
    if item.header_name is not None:
        if item.regex is not None:
            return {"type": "RegularExpression", "name": item.header_name, "value": item.regex}
        assert item.header_value is not None
        return {"type": "Exact", "name": item.header_name, "value": item.header_value}
    # Names and values are letters, digits, `_` and `-` (the spec's patterns): no escaping.
    return {
        "type": "RegularExpression",
        "name": "Cookie",
        "value": f"(^|;\\s*){item.cookie_name}={item.cookie_value}(;|$)",
    }


def _with_state(route: dict[str, Any], md_name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    annotations = dict((route.get("metadata") or {}).get("annotations") or {})
    raw = annotations.get(ROUTING_ANNOTATION)
    try:
        everything = json.loads(raw) if raw else {}
    except ValueError:
        everything = {}
    if not isinstance(everything, dict):
        everything = {}
    kept = {key: value for key, value in entry.items() if value}
    if kept:
        everything[md_name] = kept
    else:
        everything.pop(md_name, None)
    if everything:
        annotations[ROUTING_ANNOTATION] = json.dumps(everything, sort_keys=True)
    else:
        annotations.pop(ROUTING_ANNOTATION, None)
    route.setdefault("metadata", {})["annotations"] = annotations
    return route


def apply_body(route: Route) -> dict[str, Any]:
    """What the router applies: the rules and its annotation, with the
    resourceVersion read as a precondition. Only ROUTING_ANNOTATION among the
    annotations: the others are not the operator's to own."""
    metadata = route.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    body_metadata: dict[str, Any] = {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "resourceVersion": metadata.get("resourceVersion"),
    }
    if ROUTING_ANNOTATION in annotations:
        body_metadata["annotations"] = {ROUTING_ANNOTATION: annotations[ROUTING_ANNOTATION]}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": body_metadata,
        "spec": {"rules": _rules(route)},
    }


def check(
    route: Route | None, name: str, namespace: str, md_name: str, backends: Backends
) -> RouteCheck:
    """What the gateway reports of one route (see RouteCheck)."""
    label = f"HTTPRoute {namespace}/{name}"
    if route is None:
        return RouteCheck("no", Reason.ROUTE_INVALID, f"{label} not found")
    if not managed_rules(route, md_name, backends):
        return RouteCheck(
            "no",
            Reason.ROUTE_INVALID,
            f"{label} has no rule with a backendRef to Service {backends.namespace}/"
            f"{backends.stable}",
        )
    generation = (route.get("metadata") or {}).get("generation")
    parents = ((route.get("status") or {}).get("parents")) or []
    reported = 0
    for parent in parents:
        conditions = {
            c.get("type"): c
            for c in parent.get("conditions") or []
            if c.get("observedGeneration") == generation
        }
        for kind in ("Accepted", "ResolvedRefs"):
            condition = conditions.get(kind)
            if condition is not None and condition.get("status") == "False":
                ref = parent.get("parentRef") or {}
                where = f"{ref.get('namespace') or namespace}/{ref.get('name', '')}"
                return RouteCheck(
                    "no",
                    Reason.ROUTE_REJECTED,
                    f"{label}: parent {where} ({parent.get('controllerName', '')}): "
                    f"{kind}=False ({condition.get('reason', '')}): "
                    f"{condition.get('message', '')}".rstrip(": "),
                )
        if all(conditions.get(k, {}).get("status") == "True" for k in ("Accepted", "ResolvedRefs")):
            reported += 1
    if not parents or reported < len(parents):
        return RouteCheck(
            "unknown",
            "",
            f"{label}: no gateway controller reports Accepted and ResolvedRefs "
            f"for generation {generation}",
        )
    return RouteCheck("yes")


def combine(checks: Sequence[RouteCheck]) -> RouteCheck:
    """One verdict for every route: the first no, else the first unknown, else yes."""
    for verdict in ("no", "unknown"):
        found = next((c for c in checks if c.verdict == verdict), None)
        if found is not None:
            return found
    return RouteCheck("yes")
