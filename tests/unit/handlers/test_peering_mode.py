"""The peering mode chosen at start-up: without the peering object a replica runs
alone with a WARNING that says how to create it (or waits, with an ERROR, when
peering is required); with it, peering is mandatory as before."""

from __future__ import annotations

import json
import logging
import re
from typing import cast

import pytest
from kubernetes import client

from modelrollout.handlers.peering import PeeringLookup, lookup_peering, peering_mode
from modelrollout.settings import OperatorSettings

pytestmark = pytest.mark.unit

CLUSTERWIDE = OperatorSettings(priority=7)
NAMESPACED = OperatorSettings(namespaces=("ml", "ml-staging"), priority=7)


def created_objects(message: str) -> list[dict[str, object]]:
    """The objects the message's `echo '<json>' | kubectl apply -f -` commands make."""
    return [
        json.loads(body) for body in re.findall(r"echo '(\{.*?\})' \| kubectl apply -f -", message)
    ]


def test_no_cluster_wide_object_runs_standalone_with_a_warning_saying_how_to_peer() -> None:
    mode = peering_mode(CLUSTERWIDE, PeeringLookup(missing=(None,)))
    assert not mode.mandatory, "Kopf would wait for the object forever"
    assert mode.level == logging.WARNING
    assert mode.message.startswith(
        "No ClusterKopfPeering 'modelrollout' (cluster-wide) found: this replica runs standalone"
    )
    assert "a second replica started the same way would act" in mode.message
    assert created_objects(mode.message) == [
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
         "metadata": {"name": "modelrollout"}},
    ]  # fmt: skip
    assert "pass --standalone (MODELROLLOUT_STANDALONE=true)" in mode.message
    assert "--require-peering (MODELROLLOUT_PEERING_REQUIRED=true)" in mode.message
    assert "within the peering lifetime (60 s)" in mode.message


def test_namespaced_warning_names_only_the_namespaces_without_the_object() -> None:
    settings = OperatorSettings(namespaces=("ml", "ml-staging"), peering_name="mr")
    mode = peering_mode(settings, PeeringLookup(missing=("ml-staging",)))
    assert not mode.mandatory and mode.level == logging.WARNING
    assert mode.message.startswith("No KopfPeering 'mr' in namespace ml-staging found")
    assert created_objects(mode.message) == [
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
         "metadata": {"name": "mr", "namespace": "ml-staging"}},
    ]  # fmt: skip


def test_required_peering_without_the_object_waits_and_says_so_as_an_error() -> None:
    settings = OperatorSettings(namespaces=("ml",), peering_required=True)
    mode = peering_mode(settings, PeeringLookup(missing=("ml",)))
    assert mode.mandatory, "a required peering must never let two replicas act"
    assert mode.level == logging.ERROR
    assert "No KopfPeering 'modelrollout' in namespace ml found, and peering is required" in (
        mode.message
    )
    assert "acts on nothing until it exists" in mode.message
    assert len(created_objects(mode.message)) == 1


def test_missing_peering_crds_are_named_with_the_file_that_installs_them() -> None:
    mode = peering_mode(NAMESPACED, PeeringLookup(missing=("ml", "ml-staging"), crd_missing=True))
    assert not mode.mandatory and mode.level == logging.WARNING
    assert "kubectl apply --server-side -f crds/kopf-peering.yaml" in mode.message
    assert [o["metadata"] for o in created_objects(mode.message)] == [
        {"name": "modelrollout", "namespace": "ml"},
        {"name": "modelrollout", "namespace": "ml-staging"},
    ]


@pytest.mark.parametrize("settings", [CLUSTERWIDE, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_with_the_object_peering_is_mandatory_as_before(settings: OperatorSettings) -> None:
    mode = peering_mode(settings, PeeringLookup(missing=()))
    assert mode.mandatory, "a replica starts paused until it has seen its peers"
    assert mode.level == logging.INFO
    assert "the highest-priority replica acts" in mode.message and "priority: 7" in mode.message


def test_a_failed_lookup_keeps_peering_mandatory_the_safe_side() -> None:
    mode = peering_mode(NAMESPACED, PeeringLookup(error="403 Forbidden"))
    assert mode.mandatory and mode.level == logging.WARNING
    assert "Could not look for the KopfPeering 'modelrollout' in namespaces ml, ml-staging" in (
        mode.message
    )
    assert "(403 Forbidden)" in mode.message


def test_standalone_on_purpose_never_waits_and_never_warns() -> None:
    settings = OperatorSettings(standalone=True)
    mode = peering_mode(settings, PeeringLookup())
    assert not mode.mandatory and mode.level == logging.INFO


def test_namespace_patterns_are_not_looked_up_and_peering_stays_mandatory() -> None:
    settings = OperatorSettings(namespaces=("ml", "team-*"))
    lookup = lookup_peering(cast("client.ApiClient", None), settings)
    assert lookup.error == "Kopf matches the namespace patterns team-*"
    mode = peering_mode(settings, lookup)
    assert mode.mandatory and mode.level == logging.WARNING
    assert [o["metadata"] for o in created_objects(mode.message)] == [
        {"name": "modelrollout", "namespace": "ml"}
    ]
    assert "a KopfPeering 'modelrollout' in each namespace matching team-*" in mode.message
