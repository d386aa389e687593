"""``LookoutLink``: a button on the task that opens the job in Armada's Lookout UI.

The operator records the job (``XCOM_KEY``) as soon as it is submitted, before any
deferral, so the link works while the task waits.

Airflow asks for the link twice: the task runner, when the task ends, with the operator
that just ran (it stores the answer as the ``_link_LookoutLink`` XCom); and the API
server, with the serialized operator. The running operator knows whether it submitted
(its ``job_id``), so for a task that failed before submitting (a bad spec), or one with
``do_xcom_push=False``, the link asks for no record that cannot exist: the Task SDK logs
such a miss as an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from armada_hooks._compat import BaseOperatorLink, get_xcom

if TYPE_CHECKING:
    from collections.abc import Mapping

XCOM_KEY = "armada_job"
_UNKNOWN = object()  # a serialized operator has no job_id: only its XCom knows


def lookout_job_url(lookout_url: str, job_id: str) -> str:
    """Lookout's page for one job (``{lookout}/jobs/{job_id}`` redirects to its sidebar)."""
    return f"{lookout_url.rstrip('/')}/jobs/{quote(job_id, safe='')}"


class LookoutLink(BaseOperatorLink):
    """Opens the task's Armada job in Lookout."""

    name = "Lookout"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The job's Lookout URL; empty until the job exists or without a Lookout URL."""
        ran_without_job = getattr(operator, "job_id", _UNKNOWN) is None
        if ran_without_job or not getattr(operator, "do_xcom_push", True):
            return ""  # no record was written, so none is asked for
        record: Mapping[str, Any] | None = get_xcom(ti_key, XCOM_KEY)
        if not record or not record.get("lookout_url") or not record.get("job_id"):
            return ""
        return lookout_job_url(str(record["lookout_url"]), str(record["job_id"]))
