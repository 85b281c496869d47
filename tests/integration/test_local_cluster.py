"""The local control plane is a real Kubernetes: version, three KWOK nodes beside
the real one, scheduling onto KWOK nodes, EndpointSlices, CRD schemas with CEL,
RBAC and garbage collection."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.devenv.cluster import SIMULATED_NODE_TAINT_KEY
from modelrollout.devenv.node import NODE_KIND_LABEL
from modelrollout.devenv.tools import pinned_versions
from support.kube import ClusterUnderTest
from support.waiting import wait_for

pytestmark = pytest.mark.integration

# Scheduling plus KWOK's simulated pod start; generous for a loaded 2-core machine.
SETTLE_SECONDS = 90.0


def test_version_is_the_pinned_kubernetes(kube: ClusterUnderTest) -> None:
    served = client.VersionApi(kube.api).get_code()
    assert served.git_version == pinned_versions()["KUBERNETES_VERSION"]
    reported = json.loads(kube.kubectl("version", "-o", "json"))
    assert reported["serverVersion"]["gitVersion"] == served.git_version


def test_the_cluster_has_three_ready_kwok_nodes_and_one_real_node(kube: ClusterUnderTest) -> None:
    nodes = client.CoreV1Api(kube.api).list_node().items
    ready = [
        n for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    ]  # fmt: skip
    fake = [n for n in ready if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"]
    real = [n for n in ready if n not in fake]
    assert len(fake) >= 3
    assert [n.metadata.name for n in real] == [kube.cluster.node.name]
    # A pod lands on a simulated node only when it asks to; everything else runs for real.
    for node in fake:
        assert node.metadata.labels[NODE_KIND_LABEL] == "simulated"
        assert [(t.key, t.effect) for t in node.spec.taints or []] == [
            (SIMULATED_NODE_TAINT_KEY, "NoSchedule")
        ], node.spec.taints
    assert real[0].metadata.labels[NODE_KIND_LABEL] == "real"
    assert not real[0].spec.taints, real[0].spec.taints


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="web",
                            image="registry.invalid/web:1",
                            ports=[client.V1ContainerPort(container_port=8080, name="http")],
                        )
                    ],
                    # No container runs: this checks the control plane's scheduling
                    # and Services, which KWOK's simulated pods are enough for.
                    tolerations=[
                        client.V1Toleration(
                            key=SIMULATED_NODE_TAINT_KEY, operator="Exists", effect="NoSchedule"
                        )
                    ],
                    node_selector={NODE_KIND_LABEL: "simulated"},
                ),
            ),
        ),
    )


def test_the_service_range_holds_more_than_a_few_dozen_model_deployments(
    kube: ClusterUnderTest, namespace: str
) -> None:
    # Each ModelDeployment owns 3 ClusterIP Services; kube-apiserver's default
    # range (a /24) ran out at 84 of them.
    core = client.CoreV1Api(kube.api)
    services = 300
    for index in range(services):
        core.create_namespaced_service(
            namespace,
            client.V1Service(
                metadata=client.V1ObjectMeta(name=f"svc-{index}"),
                spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
            ),
        )
    addresses = {s.spec.cluster_ip for s in core.list_namespaced_service(namespace).items}
    assert len(addresses) == services


def _ready_replicas(apps: client.AppsV1Api, name: str, namespace: str) -> int:
    status = apps.read_namespaced_deployment(name, namespace).status
    return status.ready_replicas or 0


def test_deployment_scales_and_its_service_gets_endpoint_slices(
    kube: ClusterUnderTest, namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube.api), client.CoreV1Api(kube.api)
    discovery = client.DiscoveryV1Api(kube.api)
    apps.create_namespaced_deployment(namespace, _deployment("web", 3))
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(
                selector={"app": "web"},
                ports=[client.V1ServicePort(port=80, target_port="http")],
            ),
        ),
    )

    def available(count: int) -> bool:
        status = apps.read_namespaced_deployment("web", namespace).status
        return status.available_replicas == count and status.ready_replicas == count

    wait_for(lambda: available(3), timeout=SETTLE_SECONDS, what="3 available replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    simulated = {
        n.metadata.name for n in core.list_node(label_selector=f"{NODE_KIND_LABEL}=simulated").items
    }
    assert all(p.spec.node_name in simulated for p in pods), "pods scheduled onto KWOK nodes"
    assert all(p.status.phase == "Running" and p.status.pod_ip for p in pods)

    def endpoint_addresses() -> set[str]:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=web"
        ).items
        return {
            address
            for s in slices
            for e in (s.endpoints or [])
            if e.conditions and e.conditions.ready
            for address in e.addresses
        }

    def pod_ips() -> set[str]:
        return {
            p.status.pod_ip
            for p in core.list_namespaced_pod(namespace, label_selector="app=web").items
            if p.status.pod_ip and p.metadata.deletion_timestamp is None
        }

    wait_for(
        lambda: endpoint_addresses() == pod_ips() and len(pod_ips()) == 3,
        timeout=SETTLE_SECONDS,
        what="EndpointSlices listing the 3 pods' addresses",
    )

    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 5}})
    wait_for(lambda: available(5), timeout=SETTLE_SECONDS, what="5 available replicas")
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
    wait_for(lambda: available(1), timeout=SETTLE_SECONDS, what="1 available replica")
    wait_for(
        lambda: len(endpoint_addresses()) == 1 and endpoint_addresses() == pod_ips(),
        timeout=SETTLE_SECONDS,
        what="EndpointSlices shrinking to the one remaining pod",
    )


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.clustertest.modelrollout.io"},
    "spec": {
        "group": "clustertest.modelrollout.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["minReplicas", "maxReplicas"],
                                "properties": {
                                    "minReplicas": {"type": "integer", "minimum": 0},
                                    "maxReplicas": {"type": "integer", "maximum": 100},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.minReplicas <= self.maxReplicas",
                                        "message": "minReplicas must not exceed maxReplicas",
                                    }
                                ],
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _widget(name: str, low: int, high: int) -> dict[str, object]:
    return {
        "apiVersion": "clustertest.modelrollout.io/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"minReplicas": low, "maxReplicas": high},
        "status": {"phase": "set-by-create"},
    }


def test_crd_schema_and_cel_rule_are_enforced_and_status_is_separate(
    kube: ClusterUnderTest, namespace: str
) -> None:
    extensions = client.ApiextensionsV1Api(kube.api)
    custom = client.CustomObjectsApi(kube.api)
    try:
        extensions.create_custom_resource_definition(WIDGET_CRD)
    except ApiException as error:
        if error.status != 409:
            raise

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(WIDGET_CRD["metadata"]["name"])  # type: ignore[index]
        return any(
            c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])
        )

    wait_for(established, timeout=30, what="the Widget CRD to be established")
    group, version, plural = "clustertest.modelrollout.io", "v1", "widgets"

    def create(body: dict[str, object]) -> dict[str, object]:
        created: dict[str, object] = custom.create_namespaced_custom_object(
            group, version, namespace, plural, body
        )
        return created

    # Right after Established, discovery may lag for a moment: retry on 404 only.
    wait_for(
        lambda: _created_or_none(lambda: create(_widget("good", 1, 3))),
        timeout=30,
        what="the Widget API to serve",
    )
    stored = custom.get_namespaced_custom_object(group, version, namespace, plural, "good")
    assert stored["spec"] == {"minReplicas": 1, "maxReplicas": 3}
    assert "status" not in stored, "status in a create is ignored when status is a subresource"

    with pytest.raises(ApiException) as rejected:
        create(_widget("bad", 5, 2))
    assert rejected.value.status == 422
    assert "minReplicas must not exceed maxReplicas" in str(rejected.value.body)

    with pytest.raises(ApiException) as out_of_range:
        create(_widget("huge", 1, 1000))
    assert out_of_range.value.status == 422
    assert "spec.maxReplicas" in str(out_of_range.value.body)

    custom.patch_namespaced_custom_object_status(
        group, version, namespace, plural, "good", {"status": {"phase": "Ready"}}
    )
    custom.patch_namespaced_custom_object(
        group, version, namespace, plural, "good",
        {"spec": {"maxReplicas": 4}, "status": {"phase": "ignored"}},
    )  # fmt: skip
    after = custom.get_namespaced_custom_object(group, version, namespace, plural, "good")
    assert after["status"] == {"phase": "Ready"}, "a spec patch cannot write status"
    assert after["spec"]["maxReplicas"] == 4


def _created_or_none(create: object) -> object:
    try:
        return create()  # type: ignore[operator]
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def test_rbac_denies_a_service_account_what_it_was_not_granted(
    kube: ClusterUnderTest, namespace: str
) -> None:
    core, rbac = client.CoreV1Api(kube.api), client.RbacAuthorizationV1Api(kube.api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-reads-pods"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )
    token = core.create_namespaced_service_account_token(
        "reader", namespace, client.AuthenticationV1TokenRequest(spec={"audiences": []})
    ).status.token

    configuration = client.Configuration()
    admin = kube.api.configuration
    configuration.host = admin.host
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.verify_ssl = admin.verify_ssl
    configuration.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(configuration) as as_reader:
        reader = client.CoreV1Api(as_reader)

        def may_list_pods() -> bool:
            try:
                reader.list_namespaced_pod(namespace)
            except ApiException as error:
                if error.status == 403:  # the new binding may take a moment to reach the cache
                    return False
                raise
            return True

        wait_for(may_list_pods, timeout=30, what="the granted pod list to be allowed")
        for forbidden in (
            lambda: reader.list_namespaced_secret(namespace),
            lambda: reader.list_namespaced_pod("default"),
            lambda: reader.delete_collection_namespaced_pod(namespace),
        ):
            with pytest.raises(ApiException) as denied:
                forbidden()
            assert denied.value.status == 403


def test_deleting_an_owner_garbage_collects_its_dependents(
    kube: ClusterUnderTest, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    for name in ("dependent-a", "dependent-b"):
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=name, owner_references=[reference])
            ),
        )
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bystander"))
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def remaining() -> set[str]:
        return {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}

    wait_for(
        lambda: not ({"dependent-a", "dependent-b"} & remaining()),
        timeout=SETTLE_SECONDS,
        what="the garbage collector to delete the dependents",
    )
    assert "bystander" in remaining()
