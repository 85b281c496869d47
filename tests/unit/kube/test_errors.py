"""The operator tells a namespace being deleted from an RBAC denial by the
Status the API server sends, not by the status code."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from modelrollout.kube.errors import namespace_terminating


def refusal(status: int, body: object) -> ApiException:
    error = ApiException(status=status, reason="Forbidden")
    error.body = body if isinstance(body, str) else json.dumps(body)
    return error


# As a v1.34 API server answered a create in a namespace being deleted.
TERMINATING = {
    "kind": "Status",
    "status": "Failure",
    "message": 'services "fraud" is forbidden: unable to create new content in namespace '
    "t-9ac4cbb5 because it is being terminated",
    "reason": "Forbidden",
    "details": {
        "name": "fraud",
        "kind": "services",
        "causes": [
            {
                "reason": "NamespaceTerminating",
                "message": "namespace t-9ac4cbb5 is being terminated",
                "field": "metadata.namespace",
            }
        ],
    },
    "code": 403,
}
RBAC = {
    "kind": "Status",
    "status": "Failure",
    "message": 'services is forbidden: User "system:serviceaccount:ops:modelrollout" '
    'cannot create resource "services" in API group "" in the namespace "ml"',
    "reason": "Forbidden",
    "details": {"kind": "services"},
    "code": 403,
}


@pytest.mark.unit
def test_a_create_in_a_terminating_namespace_is_recognised() -> None:
    assert namespace_terminating(refusal(403, TERMINATING))


@pytest.mark.unit
@pytest.mark.parametrize(
    "error",
    [
        refusal(403, RBAC),
        refusal(409, TERMINATING),  # only a 403 carries that cause
        refusal(403, "<html>proxy error</html>"),
        refusal(403, ""),
        refusal(403, ["not", "a", "status"]),
        refusal(403, {"details": {"causes": "NamespaceTerminating"}}),
        refusal(403, {"details": ["NamespaceTerminating"]}),
    ],
    ids=[
        "rbac-denial",
        "not-a-403",
        "html",
        "empty",
        "list-body",
        "malformed-causes",
        "malformed-details",
    ],
)
def test_anything_else_is_not_mistaken_for_it(error: ApiException) -> None:
    assert not namespace_terminating(error)
