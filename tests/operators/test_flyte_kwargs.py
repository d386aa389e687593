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

import pickle
from types import SimpleNamespace
from typing import Any

import jsonpickle
import pytest
from airflow.sdk.exceptions import TaskDeferred

from armada_hooks._compat import BaseOperator
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.testing.specs import job_request_item

pytestmark = [
    pytest.mark.local_armada(time_scale=20),
    pytest.mark.filterwarnings("ignore:keys will default to True:DeprecationWarning"),
]


class FlyteOperatorNew:
    """``_flyte_operator``: outside the connector, capture the kwargs, build no operator."""

    def __init__(self) -> None:
        self.in_connector = False  # GET_ORIGINAL_TASK
        self.captured: list[SimpleNamespace] = []

    def __call__(self, cls: type, *args: Any, **kwargs: Any) -> Any:
        if self.in_connector:
            return object.__new__(cls)
        self.captured.append(
            SimpleNamespace(module=cls.__module__, name=cls.__name__, parameters=kwargs)
        )
        return "a Flyte task promise"


def test_protobuf_alone_does_not_survive_jsonpickle() -> None:
    # Why the operator must not hand Flyte the proto: the message class calls itself
    # armada.submit_pb2.JobSubmitRequestItem, which no one can import, and arrives as a list.
    decoded = jsonpickle.decode(jsonpickle.encode({"job_request": job_request_item()}))
    assert isinstance(decoded["job_request"], list)


def test_a_proto_job_request_round_trips_through_the_connector_and_submits(
    local_armada, local_armada_connection, monkeypatch
) -> None:
    given = job_request_item(["echo", "from flyte"], annotations={"example.com/via": "flyte"})
    flyte_new = FlyteOperatorNew()
    monkeypatch.setattr(BaseOperator, "__new__", flyte_new)

    promise = ArmadaOperator(task_id="armada", armada_queue="default", job_request=given)
    assert promise == "a Flyte task promise"
    task_config_pkl = jsonpickle.encode(flyte_new.captured[0])  # AirflowTask.get_custom

    flyte_new.in_connector = True
    airflow_obj = jsonpickle.decode(task_config_pkl)  # AirflowAgent.create
    assert isinstance(airflow_obj.parameters["job_request"], dict)
    operator = ArmadaOperator(**airflow_obj.parameters, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context={})  # Flyte passes an empty Context

    job_id = deferred.value.trigger.__dict__["job_id"]
    with local_armada.store.lock:
        sent = local_armada.store.jobs[job_id].item
    assert sent.pod_spec == given.pod_spec
    assert sent.annotations["example.com/via"] == "flyte"
    assert local_armada.job(job_id).queue == "default"

    # AirflowMetadata.encode/decode (cloudpickle) between create and get: the rebuilt
    # operator builds the same request again.
    restored = pickle.loads(pickle.dumps(airflow_obj))
    again = ArmadaOperator(**restored.parameters, deferrable=True).build_request({})
    assert again.pod_spec == given.pod_spec


def test_outside_flyte_the_operator_is_built_as_usual() -> None:
    operator = ArmadaOperator(task_id="plain", armada_queue="q", job_request=job_request_item())
    assert isinstance(operator, ArmadaOperator)
    assert operator.job_request["podSpec"]["containers"][0]["name"] == "main"
