"""The wire contract: the checked-in stubs are what the .proto files generate, and the
historic service keeps the names and numbers the old clients were built with."""

from __future__ import annotations

from pathlib import Path

from armada_hooks.jobservice import codegen
from armada_hooks.jobservice.protos import job_states_pb2, jobservice_pb2
from armada_hooks.states import JobState


def test_regenerating_the_stubs_gives_the_checked_in_files_byte_for_byte(tmp_path: Path):
    fresh = codegen.generate(tmp_path)
    checked_in = codegen.generated_files()
    assert [p.name for p in fresh] == [p.name for p in checked_in]
    assert len(checked_in) == 8  # two protos, four files each
    for new, old in zip(fresh, checked_in, strict=True):
        assert new.read_bytes() == old.read_bytes(), f"{old.name}: run `make protos`"


def test_historic_service_keeps_package_methods_and_fields():
    service = jobservice_pb2.DESCRIPTOR.services_by_name["JobService"]
    assert service.full_name == "jobservice.JobService"
    assert {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods} == {
        "GetJobStatus": ("jobservice.JobServiceRequest", "jobservice.JobServiceResponse"),
        "Health": ("google.protobuf.Empty", "jobservice.HealthCheckResponse"),
    }
    request = jobservice_pb2.JobServiceRequest.DESCRIPTOR
    assert {f.name: f.number for f in request.fields} == {
        "job_id": 1,
        "job_set_id": 2,
        "queue": 3,
    }
    response = jobservice_pb2.JobServiceResponse.DESCRIPTOR
    assert {f.name: f.number for f in response.fields} == {"state": 1, "error": 2}


def test_historic_states_and_health_statuses_have_their_numbers():
    states = jobservice_pb2.JobServiceResponse.State
    assert dict(states.items()) == {
        "SUBMITTED": 0,
        "DUPLICATE_FOUND": 1,
        "RUNNING": 2,
        "FAILED": 3,
        "SUCCEEDED": 4,
        "CANCELLED": 5,
        "JOB_ID_NOT_FOUND": 6,
        "CONNECTION_ERR": 7,
    }
    status = jobservice_pb2.HealthCheckResponse.ServingStatus
    assert dict(status.items()) == {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 2}


def test_our_job_state_enum_is_armadas_number_for_number():
    ours = job_states_pb2.JobState
    assert dict(ours.items()) == {s.name: s.value for s in JobState}
    assert job_states_pb2.DESCRIPTOR.package == "armada_hooks.jobservice"
