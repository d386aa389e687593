"""Which run a task belongs to when Airflow's task runner is not running it (Flyte).

Flyte's Airflow connector calls ``execute`` with an empty context: no task instance and
no DAG run, so the Airflow identity of a task (``adhoc_airflow``, run ``manual``) is the
same for every Flyte execution. The execution's id comes from Flyte instead — the
``FLYTE_INTERNAL_EXECUTION_*`` variables a Flyte task pod sets, or flytekit's current
execution context — except flytekit's local default (``local/local/local``), which every
local run shares and so identifies none.
"""

from __future__ import annotations

import os
import sys

_LOCAL_DEFAULT = ("local", "local", "local")


def flyte_execution_id() -> str | None:
    """``project-domain-name`` of the Flyte execution running this code, or None."""
    name = os.environ.get("FLYTE_INTERNAL_EXECUTION_ID")
    if name:
        project = os.environ.get("FLYTE_INTERNAL_EXECUTION_PROJECT", "")
        domain = os.environ.get("FLYTE_INTERNAL_EXECUTION_DOMAIN", "")
        return "-".join(part for part in (project, domain, name) if part)
    context = sys.modules.get("flytekit.core.context_manager")  # never import flytekit
    if context is None:
        return None
    try:
        execution = context.FlyteContextManager.current_context().user_space_params.execution_id
    except (AssertionError, AttributeError):  # no execution context on this thread
        return None
    parts = (str(execution.project), str(execution.domain), str(execution.name))
    return None if parts == _LOCAL_DEFAULT or not parts[2] else "-".join(parts)
