"""What an API server's refusal means, read from its Status body.

The status code alone is ambiguous: a 403 is an RBAC denial (a broken install
the operator must shout about) or a namespace being deleted (which refuses every
create and will remove the object anyway). Only the Status causes tell them apart.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

FORBIDDEN = 403


def namespace_terminating(error: ApiException) -> bool:
    """True when the server refused because the namespace is being deleted."""
    if error.status != FORBIDDEN:
        return False
    details = _status(error).get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    return isinstance(causes, list) and any(
        isinstance(cause, dict) and cause.get("reason") == "NamespaceTerminating"
        for cause in causes
    )


def _status(error: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
