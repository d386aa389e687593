"""Job request dicts in every accepted form, and the errors that name what is wrong where."""

from __future__ import annotations

import re
from typing import Any

import pytest
from armada_client.armada import submit_pb2
from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1
from armada_client.k8s.io.apimachinery.pkg.api.resource import generated_pb2 as resource
from google.protobuf import json_format

from armada_hooks.errors import ArmadaJobSpecError
from armada_hooks.job_requests import build_job_request_item
from armada_hooks.testing.specs import job_request_item

EXPECTED = job_request_item(["echo", "hi"], labels={"team": "ml"}, annotations={"a.io/x": "1"})


def manifest_container(**extra: Any) -> dict[str, Any]:
    """The container of EXPECTED as a user pastes it from a Kubernetes manifest."""
    return {
        "name": "main",
        "image": "busybox:latest",
        "command": ["echo", "hi"],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        **extra,
    }


def pod_spec(**extra: Any) -> dict[str, Any]:
    return {"restartPolicy": "Never", "containers": [manifest_container()], **extra}


# -- the forms --------------------------------------------------------------------------


def test_protobuf_json_is_read_as_before() -> None:
    as_json = json_format.MessageToDict(EXPECTED)
    assert build_job_request_item(as_json) == EXPECTED


def test_a_job_item_with_kubernetes_quantities_builds_the_same_item() -> None:
    item = {
        "namespace": "default",
        "priority": 1,
        "labels": {"team": "ml"},
        "annotations": {"a.io/x": "1"},
        "podSpec": pod_spec(),
    }
    assert build_job_request_item(item) == EXPECTED


def test_snake_case_keys_as_the_kubernetes_client_writes_them_build_the_same_item() -> None:
    item = {
        "namespace": "default",
        "priority": 1,
        "labels": {"team": "ml"},
        "annotations": {"a.io/x": "1"},
        "pod_spec": {
            "restart_policy": "Never",
            "host_ipc": None,  # to_dict() writes every unset field as None
            "containers": [{**manifest_container(), "image_pull_policy": None}],
        },
    }
    assert build_job_request_item(item) == EXPECTED


def test_a_bare_pod_spec_runs_in_the_default_namespace() -> None:
    built = build_job_request_item(pod_spec())
    assert built.namespace == "default"
    assert built.pod_spec == EXPECTED.pod_spec
    assert not built.labels
    assert built.priority == 0


def test_a_pod_manifest_gives_its_spec_and_its_metadata_labels_and_annotations() -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "ignored",  # Armada names jobs by id
            "uid": "0b5c",  # as `kubectl get -o yaml` writes it: ignored too
            "namespace": "team-ml",
            "labels": {"team": "ml"},
            "annotations": {"a.io/x": "1"},
        },
        "spec": pod_spec(),
        "status": {"phase": "Pending"},
    }
    built = build_job_request_item(manifest)
    assert built.namespace == "team-ml"
    assert dict(built.labels) == {"team": "ml"}
    assert dict(built.annotations) == {"a.io/x": "1"}
    assert built.pod_spec == EXPECTED.pod_spec


def test_a_pod_manifest_without_a_namespace_runs_in_default() -> None:
    built = build_job_request_item({"kind": "Pod", "spec": pod_spec()})
    assert built.namespace == "default"


def test_gpu_counts_and_cpu_fractions_may_be_numbers() -> None:
    container = manifest_container(
        resources={"limits": {"cpu": 0.5, "memory": "1Gi", "nvidia.com/gpu": 1}}
    )
    built = build_job_request_item({"containers": [container]})
    limits = built.pod_spec.containers[0].resources.limits
    assert {k: v.string for k, v in limits.items()} == {
        "cpu": "0.5",
        "memory": "1Gi",
        "nvidia.com/gpu": "1",
    }


def test_structs_kubernetes_inlines_are_read_inline_or_nested() -> None:
    inline = pod_spec(
        volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
        containers=[
            manifest_container(
                env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                livenessProbe={"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 5},
                readinessProbe={"tcpSocket": {"port": 8080}},
            )
        ],
    )
    built = build_job_request_item(inline)
    pod = built.pod_spec
    assert pod.volumes[0].volumeSource.emptyDir.sizeLimit.string == "1Gi"
    container = pod.containers[0]
    assert container.env[0].valueFrom.secretKeyRef.localObjectReference.name == "s"
    assert container.livenessProbe.handler.httpGet.port.strVal == "http"
    assert container.livenessProbe.periodSeconds == 5
    assert container.readinessProbe.handler.tcpSocket.port.intVal == 8080
    # protobuf's own nesting (what MessageToDict writes) reads to the same item
    assert build_job_request_item(json_format.MessageToDict(built)) == built


def test_a_proto_is_copied_not_shared() -> None:
    built = build_job_request_item(EXPECTED)
    assert built == EXPECTED
    assert built is not EXPECTED


def test_the_callers_dict_is_not_changed() -> None:
    item = {"namespace": "default", "podSpec": pod_spec()}
    item["podSpec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    build_job_request_item(item)
    assert item["podSpec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}}


# -- errors name the field path and the fault -------------------------------------------


def with_container(**fields: Any) -> dict[str, Any]:
    return {"namespace": "default", "podSpec": pod_spec(containers=[manifest_container(**fields)])}


BAD_SPECS = [
    (
        with_container(resources={"requests": {"cpu": "ten"}}),
        'podSpec.containers[0].resources.requests.cpu: "ten" is not a Kubernetes quantity',
    ),
    (
        with_container(resources={"limits": {"memory": {"string": "64 Mi"}}}),
        'podSpec.containers[0].resources.limits.memory: "64 Mi" is not a Kubernetes quantity',
    ),
    (
        with_container(resources={"limits": {"nvidia.com/gpu": True}}),
        "podSpec.containers[0].resources.limits.nvidia.com/gpu: true is not a Kubernetes quantity",
    ),
    (
        {"namespace": "default", "podSpecc": pod_spec()},
        "podSpecc: is not a field of JobSubmitRequestItem (did you mean 'podSpec'?)",
    ),
    (
        with_container(imagePullPolcy="Always"),
        "podSpec.containers[0].imagePullPolcy: is not a field of Container "
        "(did you mean 'imagePullPolicy'?)",
    ),
    (
        {"podSpec": {"containers": {"name": "main"}}},
        "podSpec.containers: expected a list, got dict",
    ),
    ({"podSpec": ["main"]}, "podSpec: expected a mapping (a PodSpec), got list"),
    ({"podSpec": pod_spec(restartPolicy=1)}, "podSpec.restartPolicy: 1 is not a string"),
    (with_container(env=[{"name": "PORT", "value": 8080}]), "env[0].value: 8080 is not a string"),
    ({"priority": "high"}, 'priority: "high" is not a number'),
    (
        {"podSpec": pod_spec(terminationGracePeriodSeconds=2.5)},
        "podSpec.terminationGracePeriodSeconds: 2.5 is not a whole number",
    ),
    ({"podSpec": pod_spec(hostNetwork="yes")}, 'podSpec.hostNetwork: "yes" is not true or false'),
    ({"labels": {"version": 2}}, "labels.version: 2 is not a string"),
    ({"services": [{"type": "Public"}]}, 'services[0].type: "Public" is not one of NodePort'),
    (
        {"namespace": "default", "podSpec": pod_spec(), "pod_spec": pod_spec()},
        "pod_spec: is given twice (also as 'podSpec')",
    ),
    (
        with_container(livenessProbe={"httpGet": {"port": [80]}}),
        "livenessProbe.httpGet.port: [80] is neither a number nor a string",
    ),
    (
        pod_spec(volumes=[{"name": "v", "emptyDri": {}}]),
        "volumes[0].emptyDri: is not a field of VolumeSource (did you mean 'emptyDir'?)",
    ),
    (
        {"kind": "Deployment", "spec": {}},
        'kind: "Deployment": only a Pod manifest (kind: Pod) can be a job request',
    ),
    (
        {"kind": "Pod", "apiVersion": "v2", "spec": {}},
        'apiVersion: "v2": a Pod\'s apiVersion is v1',
    ),
    ({"kind": "Pod"}, "a Pod manifest needs a spec"),
    ({"kind": "Pod", "spec": {}, "data": {}}, "data: is not part of a Pod manifest"),
    (
        {"kind": "Pod", "metadata": {"lables": {"a": "b"}}, "spec": pod_spec()},
        "metadata.lables: is not a field of ObjectMeta (did you mean 'labels'?)",
    ),
    ({"kind": "Pod", "metadata": {"labels": ["a"]}, "spec": {}}, "metadata.labels: expected a"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_every_bad_shape_names_its_field_path_and_the_fault(spec: Any, message: str) -> None:
    with pytest.raises(ArmadaJobSpecError, match=re.escape(message)) as raised:
        build_job_request_item(spec)
    assert "Failed to parse" not in str(raised.value)  # our words, not protobuf's parser text


@pytest.mark.parametrize("bad", [["not", "a", "request"], 42, None, "namespace: default"])
def test_a_request_neither_dict_nor_proto_names_its_type(bad: Any) -> None:
    with pytest.raises(ArmadaJobSpecError, match=rf"not {type(bad).__name__}$"):
        build_job_request_item(bad)


def test_a_path_prefix_says_where_the_request_started() -> None:
    bad = {"podSpec": pod_spec(restartPolicy=1)}
    with pytest.raises(ArmadaJobSpecError, match=r"^jobs\[0\]\.podSpec\.restartPolicy: "):
        build_job_request_item(bad, path=("jobs", 0))


def test_a_proto_with_a_bad_quantity_string_is_named_too() -> None:
    item = job_request_item()
    item.pod_spec.containers[0].resources.requests["cpu"].CopyFrom(resource.Quantity(string="x"))
    with pytest.raises(
        ArmadaJobSpecError,
        match=re.escape('podSpec.containers[0].resources.requests.cpu: "x" is not a Kubernetes'),
    ):
        build_job_request_item(item)


def test_pod_specs_are_checked_at_their_own_paths() -> None:
    container = core_v1.Container(name="second")
    container.resources.requests["cpu"].string = "1"
    container.resources.limits["cpu"].string = "2"
    item = submit_pb2.JobSubmitRequestItem(
        namespace="default", pod_specs=[core_v1.PodSpec(), core_v1.PodSpec(containers=[container])]
    )
    with pytest.raises(ArmadaJobSpecError, match=r"^podSpecs\[1\]\.containers\[0\]\.resources: "):
        build_job_request_item(item)
