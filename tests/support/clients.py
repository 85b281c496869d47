"""Clients of a Service's ClusterIP for the real-pod tests: a bounded loop of
requests in the background, counting what each got back (the body a small HTTP
server served, or the model version that answered a prediction)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

from modelserver.datasets import load_dataset
from modelserver.loadgen import LoadConfig, prepare_requests
from support.realnode import http_get

# One request every 0.1 s, at most this many: two minutes of clients at most.
MAX_REQUESTS = 1200
# A client's patience. On 2 cores shared by the control plane, the operator and a
# crash-looping canary reloading scikit-learn, a healthy server's answer has taken
# over 5 s (2 of 187 requests in one CI run): slow, not lost.
REQUEST_TIMEOUT_SECONDS = 15.0


class Clients:
    """A bounded loop of GETs to a URL in the background; what each got back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: Counter[str] = Counter()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ask(self, index: int) -> str:
        return http_get(self.url, timeout=REQUEST_TIMEOUT_SECONDS)

    def _run(self) -> None:
        for index in range(MAX_REQUESTS):
            if self._done.wait(0.1):
                return
            try:
                self.answers[self.ask(index)] += 1
            except (OSError, urllib.error.URLError) as error:
                # URLError wraps the cause (refused, reset, a connect timeout): name it.
                cause = getattr(error, "reason", None)
                detail = f"({type(cause).__name__}: {cause})" if isinstance(cause, OSError) else ""
                self.answers[f"error: {type(error).__name__}{detail}"] += 1

    def __enter__(self) -> Clients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)


class Predictions(Clients):
    """Bounded inference requests to the Service; answers counted by model version."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        # As many distinct rows as the load generator draws, from another seed: a
        # few rows repeated would skew the servers' drift windows (a canary's PSI
        # reached 0.56 with 50 rows cycling beside the load generator's traffic).
        config = LoadConfig(urls=(), model="wine", dataset="wine", seed=1)
        pool = prepare_requests(config, load_dataset("wine"), MAX_REQUESTS)
        self._bodies = [p.body for p in pool]

    def ask(self, index: int) -> str:
        request = urllib.request.Request(
            self.url, data=self._bodies[index % len(self._bodies)],
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as answer:
            return f"version {json.load(answer)['model_version']}"
