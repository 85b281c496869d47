"""Structured logs: one JSON object per line on stderr, never a request payload.

Log collectors (Loki, Cloud Logging, ...) parse JSON lines without
configuration. Only fixed messages and the server's own identifiers are logged
(statuses, error kinds, the model's feature names, request ids the server
assigned); input values never are, since they may be personal data, nor any
other client-chosen string (an unknown feature's name, a client's request id),
which could be anything from a payload to a forged log line.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would log every request; the metrics count them instead.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
