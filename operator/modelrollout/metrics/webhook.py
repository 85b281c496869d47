"""analysis.webhook: an HTTP endpoint asked once per interval, judged by status code.

The POST carries the rollout's names and versions (the query variables) as
JSON, so one endpoint can serve many ModelDeployments. 2xx passes, any other
status fails (the answer's start is kept as the message), no answer within
timeoutSeconds or a refused connection is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import requests

from modelrollout.rollout import MetricVerdict

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api.spec import WebhookCheck


def check_webhook(
    check: WebhookCheck,
    payload: Mapping[str, str],
    *,
    measured_at: datetime,
    revision: str,
) -> MetricVerdict:
    def result(kind: str, message: str, code: int | None = None) -> MetricVerdict:
        return MetricVerdict(
            kind,  # type: ignore[arg-type]
            measured_at,
            value=None if code is None else float(code),
            threshold="HTTP 2xx",
            message=message,
            revision=revision,
        )

    try:
        response = requests.post(check.url, json=dict(payload), timeout=check.timeout_seconds)
    except requests.Timeout:
        return result("error", f"no answer within {check.timeout_seconds} s")
    except requests.RequestException as error:
        return result("error", f"request failed: {type(error).__name__}")
    code = response.status_code
    if 200 <= code < 300:
        return result("pass", f"answered {code}", code)
    return result("fail", f"answered {code}: {response.text[:200]}", code)
