"""The Prometheus provider, on prometheus-api-client: one instant query per
measurement, its answer turned into a value, no data or an error.

Calls block; the operator runs them in its worker threads. Each query is bounded
twice: Prometheus is asked to give up after the timeout (`timeout` parameter)
and the HTTP request is abandoned a little later, so a hung server or network
costs one timeout, not a stuck reconcile. No retries here: the next interval is
the retry, and consecutiveErrorLimit says how many failures in a row to accept.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from modelrollout.metrics.measurement import Measurement

# Seconds one query may take. Prometheus's own default is 2 minutes; a rollout's
# analysis queries are small instant queries that answer in milliseconds, and a
# reconcile waits for them, so 10 s flags a sick server quickly while leaving a
# loaded one plenty of room.
QUERY_TIMEOUT_SECONDS = 10.0
# Extra seconds the HTTP client waits beyond the server-side timeout, so that a
# server which gives up in time is heard saying so.
_CLIENT_GRACE_SECONDS = 2.0


class PrometheusMetricProvider:
    def __init__(
        self,
        address: str,
        *,
        bearer_token: str | None = None,
        ca_file: Path | None = None,
        timeout_seconds: float = QUERY_TIMEOUT_SECONDS,
    ) -> None:
        session = requests.Session()
        session.verify = str(ca_file) if ca_file is not None else True
        self._timeout = timeout_seconds
        self._address = address.rstrip("/")
        self._client = PrometheusConnect(
            url=self._address,
            # The token goes only into this header; it is never logged or put in messages.
            headers={"Authorization": f"Bearer {bearer_token}"} if bearer_token else None,
            retry=Retry(total=0, raise_on_status=False),
            session=session,
            timeout=timeout_seconds + _CLIENT_GRACE_SECONDS,
        )

    def measure(self, query: str) -> Measurement:
        try:
            result = self._client.custom_query(query, params={"timeout": f"{self._timeout:g}s"})
        except requests.Timeout:
            return Measurement.error(
                f"Prometheus at {self._address} did not answer within {self._timeout:g} s"
            )
        except requests.ConnectionError as error:
            return Measurement.error(
                f"cannot reach Prometheus at {self._address}: {_root_cause(error)}"
            )
        except PrometheusApiClientException as error:
            return Measurement.error(f"Prometheus rejected the query: {_prometheus_error(error)}")
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            return Measurement.error(
                f"unreadable answer from Prometheus at {self._address}: {error}"
            )
        return from_result(result)

    def close(self) -> None:
        self._client.close()


def from_result(result: Any) -> Measurement:
    """An instant query's `data.result` (what custom_query returns) as a measurement.

    A vector must hold one series: several are ambiguous (which one to judge?),
    so they are an error that tells the user to aggregate. A scalar is a value.
    """
    if not isinstance(result, list):
        return Measurement.error(f"unexpected result from Prometheus: {str(result)[:200]}")
    if not result:
        return Measurement.no_data("the query returned an empty vector (no series matched)")
    if len(result) == 2 and not isinstance(result[0], dict):  # scalar: [time, "value"]
        return _number(result[1])
    if not all(isinstance(item, dict) for item in result):
        return Measurement.error(f"unexpected result from Prometheus: {str(result)[:200]}")
    if any("values" in item for item in result):
        return Measurement.error(
            "the query returned a range vector; use an instant expression, "
            "e.g. wrap the range selector in rate() or avg_over_time()"
        )
    if len(result) > 1:
        return Measurement.error(
            f"the query returned {len(result)} series, expected one; aggregate it "
            f"(sum, max, avg ...). Series: {_series_labels(result)}"
        )
    sample = result[0].get("value")
    if not isinstance(sample, Sequence) or len(sample) != 2:
        return Measurement.error(f"unexpected sample from Prometheus: {str(sample)[:200]}")
    return _number(sample[1])


def _number(raw: Any) -> Measurement:
    try:
        number = float(raw)  # Prometheus sends "NaN", "+Inf", "-Inf" as such
    except (TypeError, ValueError):
        return Measurement.error(f"the query returned {str(raw)[:100]!r}, not a number")
    return Measurement.of(number)


def _series_labels(result: list[dict[str, Any]]) -> str:
    shown = [json.dumps(item.get("metric", {}), sort_keys=True) for item in result[:3]]
    more = f" and {len(result) - 3} more" if len(result) > 3 else ""
    return ", ".join(shown) + more


def _prometheus_error(error: PrometheusApiClientException) -> str:
    """Turns `HTTP Status Code 400 (b'{...json...}')` into `HTTP 400: <Prometheus's error>`."""
    text = str(error)
    status, _, body = text.partition(" (")
    status = status.replace("HTTP Status Code", "HTTP")
    try:
        raw = ast.literal_eval(body[:-1])  # the client formats the body with !r
        reason = json.loads(raw)["error"] if isinstance(raw, bytes | str) else None
    except (ValueError, SyntaxError, KeyError, TypeError):
        reason = None
    if not isinstance(reason, str):
        return text[:500]
    return f"{status}: {reason}"[:500]


def _root_cause(error: BaseException) -> str:
    """The innermost reason ("Connection refused"), not urllib3's nested reprs."""
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    return str(error)[:300]


def ca_bundle_file(pem: bytes, directory: Path) -> Path:
    """The CA bundle as a file (requests verifies against a path), named by its
    hash so every reconcile with the same bundle reuses one file."""
    path = directory / f"modelrollout-ca-{hashlib.sha256(pem).hexdigest()[:16]}.pem"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pem)
        partial.replace(path)  # atomic: a concurrent reader never sees half a file
    return path
