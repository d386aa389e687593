"""armada-hooks: the Apache Airflow provider for Armada."""

from __future__ import annotations

from typing import Any

from armada_hooks import _protos

__version__ = "0.1.0"

_protos.install()  # armada_client loads beside googleapis-common-protos (see _protos)

_TEXT = {"type": ["string", "null"]}


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "armada-hooks",
        "name": "Armada",
        "description": "Run and watch jobs on Armada, the multi-cluster Kubernetes scheduler.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Armada",
                "external-doc-url": "https://armadaproject.io",
                "tags": ["software"],
            }
        ],
        "hooks": [{"integration-name": "Armada", "python-modules": ["armada_hooks.hooks.armada"]}],
        "operators": [
            {"integration-name": "Armada", "python-modules": ["armada_hooks.operators.armada"]}
        ],
        "sensors": [
            {"integration-name": "Armada", "python-modules": ["armada_hooks.sensors.armada"]}
        ],
        "triggers": [
            {"integration-name": "Armada", "python-modules": ["armada_hooks.triggers.armada"]}
        ],
        "extra-links": ["armada_hooks.links.lookout.LookoutLink"],
        "connection-types": [
            {
                "connection-type": "armada",
                "hook-class-name": "armada_hooks.hooks.armada.ArmadaHook",
                "hook-name": "Armada",
                "conn-fields": {
                    "tls": {
                        "label": "Use TLS",
                        "schema": {"type": ["boolean", "null"], "default": False},
                        "description": "For Armada, Binoculars and the job service alike.",
                    },
                    "ca_cert": {
                        "label": "CA bundle",
                        "schema": _TEXT,
                        "description": "Path or PEM text; empty uses the system roots.",
                    },
                    "client_cert": {
                        "label": "Client certificate (mutual TLS)",
                        "schema": _TEXT,
                        "description": "Path or PEM text.",
                    },
                    "client_key": {
                        "label": "Client key (mutual TLS)",
                        "schema": {"type": ["string", "null"], "format": "password"},
                        "description": "Path or PEM text.",
                    },
                    "rpc_timeout": {
                        "label": "RPC deadline (seconds)",
                        "schema": {"type": ["number", "null"], "default": 30},
                        "description": "How long each call to Armada may take.",
                    },
                    "lookout_url": {
                        "label": "Lookout URL",
                        "schema": _TEXT,
                        "description": "Armada's web UI, e.g. https://lookout.example.com; "
                        "the task's Lookout link opens <URL>/jobs/<job id>.",
                    },
                    "binoculars_target": {
                        "label": "Binoculars target",
                        "schema": _TEXT,
                        "description": "host:port of Binoculars, where container logs come "
                        "from; {cluster} becomes the job's cluster, e.g. "
                        "binoculars-{cluster}.example.com:443. Empty: no container logs.",
                    },
                    "default_queue": {
                        "label": "Default queue",
                        "schema": _TEXT,
                        "description": "For operators that name no armada_queue.",
                    },
                    "event_mode": {
                        "label": "Follow job-set events",
                        "schema": {"type": ["boolean", "null"], "default": False},
                        "description": "Deferred waits follow event streams instead of polling.",
                    },
                    "log_interval": {
                        "label": "Log fetch interval (seconds)",
                        "schema": {"type": ["number", "null"], "default": 5},
                        "description": "While a job writes; a quiet log is fetched less often.",
                    },
                    "job_service_target": {
                        "label": "Job service target",
                        "schema": _TEXT,
                        "description": "host:port of an armada-hooks job-service, e.g. "
                        "job-service.example.com:60003; job statuses are asked of it "
                        "instead of Armada.",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "extra"],
                    "relabeling": {"password": "Bearer token"},
                    # Airflow 3's form shows these for the standard fields only: the
                    # extras' examples are in their descriptions too.
                    "placeholders": {
                        "host": "armada.example.com",
                        "port": "50051",
                        "binoculars_target": "binoculars-{cluster}.example.com:443",
                        "lookout_url": "https://lookout.example.com",
                        "job_service_target": "job-service.example.com:60003",
                    },
                },
            }
        ],
    }
