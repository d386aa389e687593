"""AirflowStack's options for its connections and its local Armada (no stack is started).

That ``armada_options={"state_path": ...}`` lets a restart reload the jobs is shown by
scenario 5 (test_stack_faults.py), on the session's stack.
"""

from __future__ import annotations

import json

import pytest

from armada_hooks.testing import LocalArmada
from armada_hooks.testing.stack import AirflowStack


@pytest.fixture
def armada():
    with LocalArmada(queues=["default"], token="secret-token") as server:
        yield server


def test_an_extra_mapping_is_merged_into_the_connection_extras(tmp_path, armada):
    stack = AirflowStack(dags_folder=tmp_path, artifacts_dir=tmp_path, armada=armada)

    conn = json.loads(stack.connection_json(extra={"rpc_timeout": 2}, password="other"))

    assert conn["extra"]["rpc_timeout"] == 2
    assert conn["extra"]["binoculars_target"] == armada.target  # kept from armada_default
    assert conn["password"] == "other"
    assert json.loads(stack.connection_json())["password"] == "secret-token"


def test_armada_options_and_an_armada_of_ones_own_are_refused_together(tmp_path, armada):
    with pytest.raises(ValueError, match="either armada or armada_options"):
        AirflowStack(
            dags_folder=tmp_path,
            artifacts_dir=tmp_path,
            armada=armada,
            armada_options={"time_scale": 10},
        )
