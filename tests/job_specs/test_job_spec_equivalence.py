"""One job, written in every accepted form, builds one and the same JobSubmitRequestItem.

Hypothesis draws a job (containers, resources, labels, a volume, a secret in the env);
each form writes it as its users would: protobuf-JSON, a Kubernetes-style job item in
camelCase or snake_case with quantities as strings or numbers, resources on one side
only, inlined structs, a Pod manifest, a bare pod spec, a YAML armadactl file, a JSON
file, and the proto itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from armada_client.armada import submit_pb2
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from armada_hooks.job_requests import build_from_job_file, build_job_request_item
from armada_hooks.job_specs.quantities import quantity_text

names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
amounts = st.one_of(
    st.integers(0, 64),
    st.sampled_from([0.1, 0.25, 0.5, 1.5, 2.0]),
    st.builds(
        lambda n, s: f"{n}{s}", st.integers(1, 4096), st.sampled_from(["", "m", "Mi", "Gi", "k"])
    ),
    st.sampled_from(["1e3", ".5", "1.5Gi", "250m"]),
)
SIDES = ("both", "requests", "limits")


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: list[str]
    resources: dict[str, tuple[Any, str]]  # resource -> (amount as written, side given)


@dataclass(frozen=True)
class Job:
    namespace: str
    priority: int
    labels: dict[str, str]
    annotations: dict[str, str]
    containers: list[Container]
    volume: str | None  # an emptyDir volume of this name, with a size limit
    secret: str | None  # an env var from this secret


containers = st.builds(
    Container,
    name=names,
    image=st.sampled_from(["busybox:latest", "python:3.11-slim"]),
    command=st.lists(names, max_size=3),
    resources=st.dictionaries(
        st.sampled_from(["cpu", "memory", "nvidia.com/gpu", "ephemeral-storage"]),
        st.tuples(amounts, st.sampled_from(SIDES)),
        min_size=1,
    ),
)
jobs = st.builds(
    Job,
    namespace=names,
    priority=st.integers(0, 10),
    labels=st.dictionaries(names, names, max_size=2),
    annotations=st.dictionaries(names.map(lambda n: f"example.com/{n}"), names, max_size=2),
    containers=st.lists(containers, min_size=1, max_size=3, unique_by=lambda c: c.name),
    volume=st.none() | names,
    secret=st.none() | names,
)


def snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def pod_spec(job: Job, *, kubernetes: bool, key: Callable[[str], str] = str) -> dict[str, Any]:
    """The job's pod spec: protobuf-JSON, or as a manifest writes it (``kubernetes``)."""
    spec: dict[str, Any] = {key("restartPolicy"): "Never", key("containers"): []}
    for c in job.containers:
        requests, limits = {}, {}
        for resource, (amount, side) in c.resources.items():
            text = quantity_text(amount)
            written = amount if kubernetes else {"string": text}
            if side in ("both", "requests") or not kubernetes:
                requests[resource] = written
            if side in ("both", "limits") or not kubernetes:
                limits[resource] = written
        container: dict[str, Any] = {
            key("name"): c.name,
            key("image"): c.image,
            key("command"): c.command,
            key("resources"): {key("requests"): requests, key("limits"): limits},
        }
        if job.secret:
            secret = {key("name"): job.secret, key("key"): "token"}
            if not kubernetes:
                secret = {"localObjectReference": {"name": job.secret}, "key": "token"}
            env = {key("name"): "TOKEN", key("valueFrom"): {key("secretKeyRef"): secret}}
            container[key("env")] = [env]
        spec[key("containers")].append(container)
    if job.volume:
        source = {key("emptyDir"): {key("sizeLimit"): "1Gi" if kubernetes else {"string": "1Gi"}}}
        volume = (
            {key("name"): job.volume, **source}
            if kubernetes
            else {"name": job.volume, "volumeSource": source}
        )
        spec[key("volumes")] = [volume]
    return spec


def job_item(job: Job, *, kubernetes: bool, key: Callable[[str], str] = str) -> dict[str, Any]:
    return {
        key("namespace"): job.namespace,
        key("priority"): job.priority,
        key("labels"): job.labels,
        key("annotations"): job.annotations,
        key("podSpec"): pod_spec(job, kubernetes=kubernetes, key=key),
    }


def manifest(job: Job) -> dict[str, Any]:
    metadata = {"name": "ignored", "namespace": job.namespace, "labels": job.labels}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**metadata, "annotations": job.annotations},
        "spec": pod_spec(job, kubernetes=True),
    }


@settings(max_examples=150, deadline=None)
@given(jobs)
def test_every_form_of_a_job_builds_the_same_item(job: Job) -> None:
    protobuf_json = job_item(job, kubernetes=False)
    expected = json_format.ParseDict(protobuf_json, submit_pb2.JobSubmitRequestItem())
    assert expected.pod_spec.containers  # drawn jobs are never empty

    item_forms = {
        "proto": expected,
        "protobuf-JSON": protobuf_json,
        "MessageToDict": json_format.MessageToDict(expected),
        "kubernetes item": job_item(job, kubernetes=True),
        "snake_case item": job_item(job, kubernetes=True, key=snake),
        "armadactl YAML": "yaml",
    }
    for form, request in item_forms.items():
        if request == "yaml":
            text = yaml.safe_dump(
                {"queue": "q", "jobSetId": "s", "jobs": [job_item(job, kubernetes=True)]}
            )
            from_file = build_from_job_file(text, "jobs.yaml")
            assert (from_file.queue, from_file.job_set_id) == ("q", "s")
            built = from_file.item
        else:
            built = build_job_request_item(request)
        assert built == expected, form

    # A manifest cannot say the priority; a bare pod spec says neither it nor the metadata.
    without_priority = submit_pb2.JobSubmitRequestItem()
    without_priority.CopyFrom(expected)
    without_priority.ClearField("priority")
    assert build_job_request_item(manifest(job)) == without_priority
    assert build_from_job_file(json.dumps(manifest(job)), "pod.json").item == without_priority
    bare = build_job_request_item(pod_spec(job, kubernetes=True))
    assert bare.pod_spec == expected.pod_spec
    assert bare.namespace == "default"
