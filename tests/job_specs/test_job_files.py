"""Job files: YAML or JSON text holding one request, or an armadactl job file.

The armadactl shape is Armada's ``JobSubmitFile`` (pkg/client/domain/types.go: ``Queue``,
``JobSetId``, ``Jobs``), as in Armada's example/example-job.yaml.
"""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from armada_hooks.errors import ArmadaJobSpecError
from armada_hooks.job_requests import build_from_job_file, build_job_request_item

ARMADACTL_FILE = textwrap.dedent(
    """\
    queue: queue-a
    jobSetId: job-set-1
    jobs:
      - namespace: default
        priority: 0
        podSpec:
          terminationGracePeriodSeconds: 0
          restartPolicy: Never
          containers:
            - name: sleeper
              image: alpine:latest
              command: [sh, -c, "sleep 10"]
              resources:
                limits: {memory: 128Mi, cpu: 0.2}
                requests: {memory: 128Mi, cpu: 0.2}
    """
)

POD_MANIFEST = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Pod
    metadata:
      name: sleeper
      labels: {app: sleeper}
    spec:
      restartPolicy: Never
      containers:
        - name: sleeper
          image: alpine:latest
          resources:
            limits: {memory: 128Mi, cpu: 200m}
    """
)


def test_an_armadactl_file_gives_its_job_queue_and_job_set() -> None:
    built = build_from_job_file(ARMADACTL_FILE, "jobs.yaml")
    assert (built.queue, built.job_set_id) == ("queue-a", "job-set-1")
    container = built.item.pod_spec.containers[0]
    assert container.name == "sleeper"
    assert {k: v.string for k, v in container.resources.requests.items()} == {
        "memory": "128Mi",
        "cpu": "0.2",
    }
    assert built.item.pod_spec.terminationGracePeriodSeconds == 0


def test_armadactl_file_keys_are_matched_without_regard_to_case_as_go_does() -> None:
    text = ARMADACTL_FILE.replace("queue:", "Queue:").replace("jobSetId:", "jobsetid:")
    built = build_from_job_file(text, "jobs.yaml")
    assert (built.queue, built.job_set_id) == ("queue-a", "job-set-1")


def test_a_file_of_one_request_names_no_queue_or_job_set() -> None:
    built = build_from_job_file(POD_MANIFEST, "pod.yaml")
    assert (built.queue, built.job_set_id) == (None, None)
    assert dict(built.item.labels) == {"app": "sleeper"}
    assert built.item.pod_spec.containers[0].resources.requests["cpu"].string == "200m"


def test_json_files_are_read_too() -> None:
    text = json.dumps({"namespace": "default", "podSpec": {"containers": [{"name": "main"}]}})
    built = build_from_job_file(text, "job.json")
    assert built.item == build_job_request_item(json.loads(text))


def test_several_jobs_are_a_clear_error_naming_the_file() -> None:
    text = ARMADACTL_FILE + ARMADACTL_FILE[ARMADACTL_FILE.index("  - namespace") :]
    with pytest.raises(ArmadaJobSpecError) as raised:
        build_from_job_file(text, "nightly/jobs.yaml")
    message = str(raised.value)
    assert message.startswith("nightly/jobs.yaml: jobs: holds 2 jobs")
    assert "submits one" in message


def test_errors_inside_a_file_name_the_file_and_the_path_in_it() -> None:
    text = ARMADACTL_FILE.replace("cpu: 0.2}", "cpu: ten}", 1)
    with pytest.raises(
        ArmadaJobSpecError,
        match=re.escape(
            'jobs.yaml: jobs[0].podSpec.containers[0].resources.limits.cpu: "ten" is not a '
            "Kubernetes quantity"
        ),
    ):
        build_from_job_file(text, "jobs.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: [\n  {", "job.yaml: not valid YAML or JSON: "),
        ("- a\n- b\n", "job.yaml: holds list, not a job request (a mapping)"),
        ("", "job.yaml: holds NoneType, not a job request"),
        ("queue: q\njobs: []\n", "job.yaml: jobs: holds 0 jobs"),
        ("jobs: one\n", 'job.yaml: jobs: expected a list of jobs, got "one"'),
        ("jobs: [42]\n", "job.yaml: jobs[0]: expected a job (a mapping), got 42"),
        ("queue: 3\njobs: [{}]\n", "job.yaml: queue: 3 is not a name"),
        ("jobs: [{}]\npriority: 1\n", "job.yaml: priority: is not part of an armadactl job file"),
    ],
)
def test_bad_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ArmadaJobSpecError, match=re.escape(message)):
        build_from_job_file(text, "job.yaml")


def test_a_yaml_error_says_where() -> None:
    with pytest.raises(
        ArmadaJobSpecError,
        match=re.escape("mapping values are not allowed here (line 2, column 10)"),
    ):
        build_from_job_file("namespace: default\n  podSpec: {}\n", "job.yaml")
