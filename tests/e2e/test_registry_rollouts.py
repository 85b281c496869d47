"""A user's own model, from a notebook to production through the MLflow registry,
on real pods: packaged with its data, registered behind the alias `candidate`,
rolled out because the alias moved (nobody edits the ModelDeployment), promoted
with the alias `champion` moved to it; then a newer version with a labelling bug
behind the same alias, rolled back automatically on live accuracy from feedback,
the champion left where it was. The model servers load `models:/` URIs from the
registry and verify the digest recorded for the version.

Beside it, in the same stack, a regressor's rollout is gated on live error:
clients post the true numeric target of half their requests, the servers export
live MAE, and a LightGBM version trained on targets in the wrong units is rolled
back on `mae-vs-stable` alone, the ridge regression it was to replace still
serving. (One stack for both keeps a cold `make test` within its budget.)
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import requests

from modelrollout.devenv.stack import ServingStack, model_server_template
from modelrollout.devenv.usermodels import (
    DATASET,
    REGRESSION_DATASET,
    packaged_classifier,
    packaged_regressor,
)
from support.rollouts import Rollouts
from support.serving import (
    ACCURACY_VS_STABLE,
    ERROR_RATE,
    MAE_VS_STABLE,
    deploy_first_version,
    wait_all_traffic_on,
)

pytestmark = pytest.mark.e2e
# The real operator (tests/conftest.py) looks at tracked aliases every 2 s instead of 30.
OPERATOR_ENV = {"MODELROLLOUT_REGISTRY_POLL_SECONDS": "2"}

REGISTERED = "breast-cancer-model"
MODEL = "breast-cancer"
REGRESSOR_REGISTERED = "diabetes-progression"
REGRESSOR = "diabetes"


def _alias(tracking_uri: str, alias: str) -> str | None:
    answer = requests.get(
        f"{tracking_uri}/api/2.0/mlflow/registered-models/alias",
        params={"name": REGISTERED, "alias": alias},
        timeout=10,
    )
    return str(answer.json()["model_version"]["version"]) if answer.status_code == 200 else None


def _tracking(stack: ServingStack, tracking_uri: str) -> dict[str, object]:
    registry = {"name": REGISTERED, "alias": "candidate", "uri": tracking_uri}
    return _registry_model(stack, MODEL, registry, [ERROR_RATE, ACCURACY_VS_STABLE])


def _registry_model(
    stack: ServingStack, name: str, registry: dict[str, str], metrics: list[dict[str, object]]
) -> dict[str, object]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "model": {"name": name, "registry": registry},
            "template": model_server_template(stack.image, None),
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]}},
            "analysis": {
                "interval": "2s",
                "failureLimit": 1,
                "consecutiveErrorLimit": 100,
                "onNoData": "Pause",
                "prometheus": {"address": stack.prometheus.url},
                "metrics": copy.deepcopy(metrics),
            },
            "rollback": {"automatic": True},
        },
    }


def test_a_users_model_rolls_out_by_alias_and_a_worse_one_behind_it_is_rolled_back(
    rollouts: Rollouts, stack: ServingStack, tmp_path: Path
) -> None:
    registry = stack.start_registry()
    first = packaged_classifier(tmp_path / "v1", c=1.0).register(
        registry.url, REGISTERED, "candidate"
    )
    traffic = deploy_first_version(
        rollouts, stack, _tracking(stack, registry.url), feedback_share=0.5,
        dataset=DATASET, model=MODEL,
    )  # fmt: skip
    assert first.version == "1"
    rollouts.wait_status(
        MODEL, "champion recorded", lambda s: s["registry"].get("championVersion") == "1"
    )
    assert _alias(registry.url, "champion") == "1"

    # A retrained model: registered and put behind the alias, as a data scientist would.
    packaged_classifier(tmp_path / "v2", c=0.3).register(registry.url, REGISTERED, "candidate")
    status = rollouts.wait_status(
        MODEL,
        "version 2 promoted",
        lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy",
        timeout=240,
    )
    assert _alias(registry.url, "champion") == "2"
    assert traffic.stats()["2"].codes["200"] > 0, "version 2 served from the registry"
    assert rollouts.get(MODEL)["metadata"]["generation"] == 1, "the spec was never edited"

    # A labelling bug: inputs look as usual, only labelled feedback shows it is worse.
    packaged_classifier(tmp_path / "v3", label_bug=0.7).register(
        registry.url, REGISTERED, "candidate"
    )
    status = rollouts.wait_status(
        MODEL, "version 3 rolled back", lambda s: s.get("reason") == "RolledBack", timeout=240
    )
    rollback = status["lastRollback"]
    assert rollback["version"] == "3" and rollback["metric"] == "accuracy-vs-stable", rollback
    assert status["stableVersion"] == "2"
    assert _alias(registry.url, "champion") == "2", "the champion stays on what serves"
    assert _alias(registry.url, "candidate") == "3"
    history = status["history"]
    assert [h["registry"]["version"] for h in history[:2]] == ["2", "1"]
    answered = traffic.stats()
    assert answered["3"].feedback["200"] > 0, "version 3 really served and was judged"
    print(f"\n[e2e] registry rollouts: champion 2, version 3 rolled back: {rollback}")
    traffic.stop()
    _a_regressor_is_rolled_back_on_live_error(rollouts, stack, registry.url, tmp_path)


def _a_regressor_is_rolled_back_on_live_error(
    rollouts: Rollouts, stack: ServingStack, tracking_uri: str, tmp_path: Path
) -> None:
    ridge = packaged_regressor(tmp_path / "ridge").register(tracking_uri, REGRESSOR_REGISTERED)
    units = packaged_regressor(tmp_path / "units", boosted=True, units_bug=0.4).register(
        tracking_uri, REGRESSOR_REGISTERED
    )
    assert (ridge.version, units.version) == ("1", "2")
    pinned = {"name": REGRESSOR_REGISTERED, "version": "1", "uri": tracking_uri}
    body = _registry_model(stack, REGRESSOR, pinned, [ERROR_RATE, MAE_VS_STABLE])
    traffic = deploy_first_version(
        rollouts, stack, body, feedback_share=0.5, dataset=REGRESSION_DATASET, model=REGRESSOR
    )
    rollouts.patch_spec(REGRESSOR, {"model": {"registry": {**pinned, "version": "2"}}})
    status = rollouts.wait_status(
        REGRESSOR, "regressor version 2 rolled back", lambda s: s.get("reason") == "RolledBack",
        timeout=240,
    )  # fmt: skip
    rollback = status["lastRollback"]
    assert rollback["version"] == "2" and rollback["metric"] == "mae-vs-stable", rollback
    assert "maxIncrease 20" in rollback["threshold"], rollback
    assert status["stableVersion"] == "1"
    assert status["analysis"]["error-rate"]["failures"] == 0, "it failed on live error alone"
    wait_all_traffic_on(rollouts, REGRESSOR, status["stableRevision"])
    answered = traffic.stats()
    for version in ("1", "2"):
        assert answered[version].feedback["200"] > 0, f"version {version} judged: {answered}"
    print(f"\n[e2e] regressor version 2 (LightGBM) rolled back on live error: {rollback}")
