"""Job files: YAML or JSON holding one job request, or an ``armadactl`` job file.

An ``armadactl submit`` file (Armada's ``pkg/client/domain/types.go``, ``JobSubmitFile``)
is ``queue``, ``jobSetId`` and ``jobs: [...]``; Go decodes its keys without regard to
case. A task submits one job, so such a file must hold exactly one. Anything else in a
file is one job request in any form :mod:`armada_hooks.job_specs.forms` reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from armada_hooks.errors import ArmadaJobSpecError
from armada_hooks.job_specs.fields import Path, loose, show

JOB_FILE_KEYS = ("queue", "jobSetId", "jobs")


@dataclass(frozen=True)
class JobFile:
    """What a job file says: one request, and the queue and job set it names (if any)."""

    request: Mapping[Any, Any]
    queue: str | None = None
    job_set_id: str | None = None
    path: Path = ()  # where the request is in the file: ``("jobs", 0)`` in an armadactl file


def read_absolute(name: str) -> str:
    """The text of the job file at absolute path ``name``."""
    try:
        with open(name, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise ArmadaJobSpecError(f"job file {name}: {exc.strerror or exc}") from None


def parse_job_file(text: str, name: str) -> JobFile:
    """The job request in ``text`` (YAML or JSON), the content of the file ``name``."""
    import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; Airflow requires it

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ArmadaJobSpecError(f"{name}: not valid YAML or JSON: {_yaml_problem(exc)}") from None
    if not isinstance(document, Mapping):
        raise ArmadaJobSpecError(
            f"{name}: holds {type(document).__name__}, not a job request (a mapping)"
        )
    keys = {loose(k): k for k in document if isinstance(k, str)}
    if "jobs" not in keys:
        return JobFile(document)
    return _armadactl_file(document, keys, name)


def _armadactl_file(document: Mapping[Any, Any], keys: dict[str, str], name: str) -> JobFile:
    extra = sorted(keys.keys() - {loose(k) for k in JOB_FILE_KEYS})
    if extra:
        raise ArmadaJobSpecError(
            f"{name}: {keys[extra[0]]}: is not part of an armadactl job file "
            f"({', '.join(JOB_FILE_KEYS)})"
        )
    jobs = document[keys["jobs"]]
    if isinstance(jobs, str | bytes) or not isinstance(jobs, Sequence):
        raise ArmadaJobSpecError(f"{name}: jobs: expected a list of jobs, got {show(jobs)}")
    if len(jobs) != 1:
        raise ArmadaJobSpecError(
            f"{name}: jobs: holds {len(jobs)} jobs, but an ArmadaOperator task submits one; "
            "give each job its own file and task (or map one task over the files)"
        )
    if not isinstance(jobs[0], Mapping):
        raise ArmadaJobSpecError(
            f"{name}: jobs[0]: expected a job (a mapping), got {show(jobs[0])}"
        )
    named: dict[str, str | None] = {}
    for field in ("queue", "jobSetId"):
        value = document.get(keys.get(loose(field), field))
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ArmadaJobSpecError(f"{name}: {field}: {show(value)} is not a name")
        named[field] = value
    return JobFile(jobs[0], named["queue"], named["jobSetId"], (keys["jobs"], 0))


def _yaml_problem(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem
