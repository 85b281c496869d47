"""Reading one key of a Secret in a ModelDeployment's namespace (a Prometheus
bearer token, a CA bundle, a notification URL).

Only the namespace of the object is read, so a ModelDeployment can only use
Secrets its authors could read anyway. Values are returned, never logged; a
problem is a SecretUnavailable whose message names the Secret and key only.
"""

from __future__ import annotations

import base64
import binascii

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api.spec import SecretKeyRef


class SecretUnavailableError(Exception):
    """The Secret or its key is missing or unreadable; the message says which."""


def secret_value(api: client.ApiClient, namespace: str, ref: SecretKeyRef) -> bytes:
    where = f"Secret {namespace}/{ref.name}"
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(ref.name, namespace)
    except ApiException as error:
        if error.status == 404:
            raise SecretUnavailableError(f"{where} not found") from None
        if error.status == 403:
            raise SecretUnavailableError(f"{where}: the operator may not read it (RBAC)") from None
        raise
    encoded = (secret.data or {}).get(ref.key)
    if encoded is None:
        raise SecretUnavailableError(f"{where} has no key {ref.key!r}")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SecretUnavailableError(f"{where} key {ref.key!r} is not valid base64") from None


def secret_text(api: client.ApiClient, namespace: str, ref: SecretKeyRef) -> str:
    """The value as text, without surrounding whitespace (`echo` adds a newline)."""
    try:
        return secret_value(api, namespace, ref).decode().strip()
    except UnicodeDecodeError:
        raise SecretUnavailableError(
            f"Secret {namespace}/{ref.name} key {ref.key!r} is not UTF-8 text"
        ) from None
