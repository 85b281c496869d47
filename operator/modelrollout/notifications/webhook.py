"""POSTing a notification. The URL is a secret (Slack's carry the credential), so
it appears in no message or log line: errors name the Secret, not the URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests


class NotificationError(Exception):
    """The notification was not delivered; the message is safe to show."""


def post_notification(url: str, body: Mapping[str, Any], timeout_seconds: float) -> None:
    try:
        response = requests.post(url, json=dict(body), timeout=timeout_seconds)
    except requests.Timeout:
        raise NotificationError(f"no answer within {timeout_seconds:g} s") from None
    except requests.RequestException as error:
        # The exception text would contain the URL; its type says enough.
        raise NotificationError(f"request failed ({type(error).__name__})") from None
    if not 200 <= response.status_code < 300:
        raise NotificationError(f"answered HTTP {response.status_code}")
