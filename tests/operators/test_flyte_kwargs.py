"""A JobSubmitRequestItem ``job_request`` survives what Flyte's Airflow connector does to it.

Reproduced from flytekit's plugins/flytekit-airflow (flytekit e96c720), without flytekit:

- ``flytekitplugins/airflow/task.py``: ``_flyte_operator`` replaces ``BaseOperator.__new__``
  and keeps the operator's keyword arguments as ``AirflowObj(module, name, parameters)``;
  ``AirflowTask.get_custom`` stores ``jsonpickle.encode(task_config)``.
- ``flytekitplugins/airflow/connector.py``: ``AirflowAgent.create`` runs
  ``jsonpickle.decode(...)``, rebuilds the operator with ``obj_def(**parameters,
  deferrable=True)`` (``_get_airflow_instance``) and calls ``execute(context=Context())``;
  ``AirflowMetadata`` is cloudpickled between ``create`` and ``get``, where the operator is
  rebuilt from the same parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonpickle
import pytest
from google.protobuf import json_format

from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.testing.specs import job_request_item

pytestmark = [
    pytest.mark.local_armada(time_scale=20),
    pytest.mark.filterwarnings("ignore:keys will default to True:DeprecationWarning"),
]


# The connector's steps, in a fresh interpreter: Flyte's patch of BaseOperator.__new__ is for
# good (CPython cannot fully undo an assigned __new__), so it must not outlive the test.
CONNECTOR = """
import json, pickle
from types import SimpleNamespace

import jsonpickle
from armada_hooks._compat import TaskDeferred
from google.protobuf import json_format

from armada_hooks._compat import BaseOperator
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.testing.specs import job_request_item

in_connector, captured = False, []


def _flyte_operator(cls, *args, **kwargs):  # task.py: GET_ORIGINAL_TASK, else a Flyte task
    if in_connector:
        return object.__new__(cls)
    captured.append(SimpleNamespace(module=cls.__module__, name=cls.__name__, parameters=kwargs))
    return "a Flyte task promise"


BaseOperator.__new__ = _flyte_operator
given = job_request_item(["echo", "from flyte"], annotations={"example.com/via": "flyte"})
promise = ArmadaOperator(task_id="armada", armada_queue="default", job_request=given)
task_config_pkl = jsonpickle.encode(captured[0])  # AirflowTask.get_custom

in_connector = True
airflow_obj = jsonpickle.decode(task_config_pkl)  # AirflowAgent.create
operator = ArmadaOperator(**airflow_obj.parameters, deferrable=True)  # _get_airflow_instance
try:
    operator.execute(context={})  # an empty Context
    trigger = None
except TaskDeferred as deferred:
    trigger = deferred.trigger.__dict__
# AirflowMetadata.encode/decode (cloudpickle) between create and get, where it is rebuilt
restored = pickle.loads(pickle.dumps(airflow_obj))
again = ArmadaOperator(**restored.parameters, deferrable=True).build_request({})
print(json.dumps({
    "promise": promise,
    "arrived_as": type(airflow_obj.parameters["job_request"]).__name__,
    "job_id": trigger and trigger["job_id"],
    "given_pod_spec": json_format.MessageToDict(given.pod_spec),
    "again_pod_spec": json_format.MessageToDict(again.pod_spec),
}))
"""


def test_protobuf_alone_does_not_survive_jsonpickle() -> None:
    # Why the operator must not hand Flyte the proto: the message class calls itself
    # armada.submit_pb2.JobSubmitRequestItem, which no one can import, and arrives as a list.
    decoded = jsonpickle.decode(jsonpickle.encode({"job_request": job_request_item()}))
    assert isinstance(decoded["job_request"], list)


def test_a_proto_job_request_round_trips_through_the_connector_and_submits(
    local_armada, local_armada_connection
) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", CONNECTOR],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ,  # AIRFLOW_CONN_ARMADA_DEFAULT points at the local Armada
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["promise"] == "a Flyte task promise"  # Flyte, not Airflow, got the kwargs
    assert seen["arrived_as"] == "dict"
    assert seen["again_pod_spec"] == seen["given_pod_spec"]
    job_id = seen["job_id"]
    assert job_id, "execute() deferred with a trigger naming the job"
    with local_armada.store.lock:
        sent = local_armada.store.jobs[job_id].item
    assert json_format.MessageToDict(sent.pod_spec) == seen["given_pod_spec"]
    assert sent.annotations["example.com/via"] == "flyte"
    assert local_armada.job(job_id).queue == "default"


def test_outside_flyte_the_operator_is_built_as_usual() -> None:
    operator = ArmadaOperator(task_id="plain", armada_queue="q", job_request=job_request_item())
    assert isinstance(operator, ArmadaOperator)
    assert operator.job_request["podSpec"]["containers"][0]["name"] == "main"
