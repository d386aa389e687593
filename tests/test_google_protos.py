"""armada_client and googleapis-common-protos in one process (issue #10).

Both register ``google/api/http.proto`` in protobuf's process-global descriptor pool, so
every case runs in a fresh interpreter. armada_hooks' finder (``armada_hooks._protos``)
makes the two module names one module; the controls show the crash it prevents.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from armada_hooks._protos import ARMADA_TO_GOOGLE

GOOGLE_MODULES = """
import google.api.annotations_pb2
import google.api.http_pb2
import google.longrunning.operations_proto_pb2
"""

# A job submitted through ArmadaHook (the real ArmadaClient, built from an Airflow
# connection) to a local Armada, and its job set's event stream read until it succeeds.
SUBMIT_AND_STREAM = """
import os
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.testing import LocalArmada, job_request_item

with LocalArmada(queues=["default"], time_scale=50) as armada:
    os.environ["AIRFLOW_CONN_ARMADA_DEFAULT"] = armada.airflow_connection()
    with ArmadaHook() as hook:
        item = job_request_item(annotations={"armada-hooks/runtime": "0"})
        job_id = hook.submit_job("default", "protos", item)
        stream = hook.client.get_job_events_stream("default", "protos")
        events = []
        for message in stream:
            kind = message.message.WhichOneof("events")
            events.append([kind, getattr(message.message, kind).job_id == job_id])
            if kind == "succeeded":
                hook.client.unwatch_events(stream)
                break
        client = f"{type(hook.client).__module__}.{type(hook.client).__name__}"
"""

# What the process ended up with: which modules, which file in the pool, and the HTTP
# route of Armada's SubmitJobs read through the google.api.http method option.
REPORT = """
import importlib, json, sys
from google.protobuf import descriptor_pool
from armada_client.armada import submit_pb2
from armada_client.google.api import annotations_pb2
import google.longrunning.operations_proto_pb2 as operations
from armada_hooks._protos import ARMADA_TO_GOOGLE

def route(file, service, method):
    options = file.services_by_name[service].methods_by_name[method].GetOptions()
    return options.Extensions[annotations_pb2.http]

print(json.dumps({
    "events": globals().get("events"),
    "client": globals().get("client"),
    "http_module": sys.modules["google.api.http_pb2"].__name__,
    "one_module": all(
        importlib.import_module(armada) is importlib.import_module(google)
        for armada, google in ARMADA_TO_GOOGLE.items()
    ),
    "pool_arenas": descriptor_pool.Default()
    .FindFileByName("google/api/http.proto").GetOptions().HasField("cc_enable_arenas"),
    "submit_route": route(submit_pb2.DESCRIPTOR, "Submit", "SubmitJobs").post,
    "google_route": route(operations.DESCRIPTOR, "Operations", "GetOperation").get,
}))
"""

HAPPY_EVENTS = [
    [kind, True] for kind in ("submitted", "queued", "leased", "pending", "running", "succeeded")
]
REMOVE_FINDER = """
import sys
from armada_hooks._protos import GoogleApiProtos
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, GoogleApiProtos)]
"""
DUPLICATE = "duplicate file name google/api/http.proto"


def run(*parts: str) -> subprocess.CompletedProcess[str]:
    """Run the concatenated code in a new Python (the environment carries Airflow's)."""
    code = "\n".join(textwrap.dedent(part) for part in parts)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)


def report(*parts: str) -> dict[str, Any]:
    result = run(*parts, REPORT)
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def assert_one_google_copy(answer: dict[str, Any]) -> None:
    assert answer["one_module"] is True
    assert answer["submit_route"] == "/v1/job/submit"
    assert answer["google_route"] == "/v1/{name=operations/**}"


def test_google_modules_first_then_armada_hooks_submits_and_streams() -> None:
    answer = report(GOOGLE_MODULES, "import armada_hooks", SUBMIT_AND_STREAM)

    assert answer["events"] == HAPPY_EVENTS
    assert answer["client"] == "armada_client.client.ArmadaClient"
    assert_one_google_copy(answer)
    assert answer["http_module"] == "google.api.http_pb2"
    assert answer["pool_arenas"] is False  # Google's file, not armada_client's


def test_armada_hooks_and_a_job_first_then_google_modules() -> None:
    answer = report("import armada_hooks", SUBMIT_AND_STREAM, GOOGLE_MODULES)

    assert answer["events"] == HAPPY_EVENTS
    assert_one_google_copy(answer)
    assert answer["http_module"] == "google.api.http_pb2"
    assert answer["pool_arenas"] is False


def test_armada_client_before_armada_hooks_lends_google_its_copy() -> None:
    """The copy already in the pool stays; Google's modules get armada_client's module."""
    answer = report("import armada_client.client", "import armada_hooks", GOOGLE_MODULES)

    assert_one_google_copy(answer)
    assert answer["http_module"] == "armada_client.google.api.http_pb2"
    assert answer["pool_arenas"] is True


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("import armada_client.client", GOOGLE_MODULES),
        (GOOGLE_MODULES, "import armada_client.client"),
    ],
    ids=["armada-client-first", "google-first"],
)
def test_without_the_finder_either_order_crashes(first: str, second: str) -> None:
    result = run("import armada_hooks", REMOVE_FINDER, first, second)

    assert result.returncode != 0
    assert DUPLICATE in result.stderr


HIDE_GOOGLE_API = """
import sys

class NotInstalled:
    def find_spec(self, fullname, path, target=None):
        if fullname == "google.api" or fullname.startswith("google.api."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

sys.meta_path.insert(0, NotInstalled())
"""


def test_without_googleapis_common_protos_armada_clients_own_copy_loads() -> None:
    result = run(
        HIDE_GOOGLE_API,
        "import armada_hooks",
        "from armada_client.armada import submit_pb2",
        "from armada_client.google.api import annotations_pb2, http_pb2",
        "rule = submit_pb2.DESCRIPTOR.services_by_name['Submit'].methods_by_name['SubmitJobs']",
        "print(http_pb2.__name__, rule.GetOptions().Extensions[annotations_pb2.http].post)",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["armada_client.google.api.http_pb2", "/v1/job/submit"]


def file_proto(module: str) -> descriptor_pb2.FileDescriptorProto:
    """``module``'s serialized file descriptor, loaded without armada_hooks in a new Python."""
    result = run(
        "import base64, importlib",
        f"descriptor = importlib.import_module({module!r}).DESCRIPTOR",
        "print(base64.b64encode(descriptor.serialized_pb).decode())",
    )
    assert result.returncode == 0, result.stderr
    return descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(result.stdout))


@pytest.mark.parametrize(("armada_module", "google_module"), sorted(ARMADA_TO_GOOGLE.items()))
def test_the_two_copies_are_one_file_but_for_an_option_set_to_its_default(
    armada_module: str, google_module: str
) -> None:
    """Same messages, fields, numbers and extension: either copy serves both clients."""
    armada = file_proto(armada_module)
    google = file_proto(google_module)

    if armada.name == "google/api/http.proto":  # set by armada_client to its default, true
        assert armada.options.HasField("cc_enable_arenas")
        assert armada.options.cc_enable_arenas
        assert not google.options.HasField("cc_enable_arenas")
        armada.options.ClearField("cc_enable_arenas")
    assert armada == google


def test_armadas_protos_name_the_dependency_by_googles_file_name() -> None:
    """So the pool resolves Armada's ``google.api.http`` options to Google's file."""
    for module in ("submit_pb2", "event_pb2", "job_pb2", "binoculars_pb2"):
        armada = file_proto(f"armada_client.armada.{module}")
        assert "google/api/annotations.proto" in armada.dependency
