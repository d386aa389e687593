"""The simulated cluster behind the local Armada: its nodes and its scheduler's configuration.

A job is placed the way Armada's scheduler places it: its pod's total requests
(``internal/common/resource/resource.go``, ``TotalPodResourceRequest``) must fit on one
node, or its submission check (``internal/scheduler/submitcheck.go``) rejects it. The
resource types, priority classes and their preemptibility are those of Armada's default
scheduler configuration (``config/scheduler/config.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from armada_hooks.testing.validation import parse_quantity

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1

POOL = "default"
# Armada's default supportedResourceTypes, every one also an indexed resource there.
SUPPORTED_RESOURCES = ("memory", "cpu", "ephemeral-storage", "nvidia.com/gpu")
DEFAULT_PRIORITY_CLASS = "armada-default"
PREEMPTIBLE_PRIORITY_CLASSES = frozenset({"armada-preemptible"})
# nodedb.go: nodes the resource index skips are excluded for this reason.
INSUFFICIENT_RESOURCES = "insufficient resources available"


class NodeConfigError(ValueError):
    """A simulated node is described in a way the local Armada cannot use."""


@dataclass(frozen=True)
class Node:
    """One simulated node: a name and its allocatable resources as Kubernetes quantities.

    >>> Node("gpu-node", {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "2"})
    """

    name: str
    resources: dict[str, str] = field(default_factory=dict)
    _amounts: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise NodeConfigError("a node needs a name")
        amounts = {}
        for resource, quantity in self.resources.items():
            try:
                amount = parse_quantity(quantity)
            except ValueError as exc:
                raise NodeConfigError(f"node {self.name}: {resource}: {exc}") from None
            if amount < 0:
                raise NodeConfigError(f"node {self.name}: {resource} must be >= 0, got {quantity}")
            amounts[resource] = amount
        object.__setattr__(self, "_amounts", amounts)  # parsed once, read per job

    def capacity(self, resource: str) -> float:
        """How much of ``resource`` the node has (0 for a resource it does not list)."""
        return self._amounts.get(resource, 0.0)


DEFAULT_NODES: tuple[Node, ...] = (
    Node("local-node-1", {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "100Gi"}),
)


def parse_node(text: str, *, default_name: str = "local-node-1") -> Node:
    """A node from ``"[NAME:]RESOURCE=QUANTITY,..."``, e.g. ``"big:cpu=64,memory=256Gi"``."""
    name, sep, spec = text.partition(":")
    if not sep:
        name, spec = default_name, text
    resources: dict[str, str] = {}
    for part in spec.split(","):
        resource, eq, quantity = part.partition("=")
        if not eq or not resource.strip() or not quantity.strip():
            raise NodeConfigError(
                f"node {text!r}: {part!r} is not RESOURCE=QUANTITY; "
                "write e.g. 'cpu=8,memory=32Gi' or 'big:cpu=64,memory=256Gi'"
            )
        resources[resource.strip()] = quantity.strip()
    return Node(name.strip(), resources)


def check_nodes(nodes: Iterable[Node]) -> tuple[Node, ...]:
    """``nodes`` as a tuple; at least one, with distinct names."""
    checked = tuple(nodes)
    if not checked:
        raise NodeConfigError("the local Armada needs at least one node")
    names = [n.name for n in checked]
    if len(set(names)) != len(names):
        raise NodeConfigError(f"node names must be distinct, got {names}")
    return checked


def priority_class(pod: core_v1.PodSpec) -> str:
    """The job's priority class (Armada's default when the pod names none)."""
    return pod.priorityClassName or DEFAULT_PRIORITY_CLASS


def preemptible(pod: core_v1.PodSpec) -> bool:
    """Whether Armada's scheduler preempts this job when asked to (only if preemptible)."""
    return priority_class(pod) in PREEMPTIBLE_PRIORITY_CLASSES


def pod_requests(pod: core_v1.PodSpec) -> dict[str, float]:
    """The pod's total requests: containers and native sidecars add up, init containers peak."""
    total: dict[str, float] = {}
    for container in pod.containers:
        for resource, amount in _requests(container).items():
            total[resource] = total.get(resource, 0.0) + amount
    for container in pod.initContainers:
        for resource, amount in _requests(container).items():
            if container.restartPolicy == "Always":
                total[resource] = total.get(resource, 0.0) + amount
            else:
                total[resource] = max(total.get(resource, 0.0), amount)
    return total


def _requests(container: core_v1.Container) -> dict[str, float]:
    return {name: parse_quantity(q.string) for name, q in container.resources.requests.items()}


@dataclass(frozen=True)
class Placement:
    """Where the submission check puts a job: a node, or the reason it was rejected."""

    node: str = ""
    rejection: str = ""


def submit_check(pod: core_v1.PodSpec, nodes: Sequence[Node]) -> Placement:
    """Armada's submission check of one job against the simulated nodes."""
    requests = pod_requests(pod)
    supported = set(SUPPORTED_RESOURCES).union(*(n.resources for n in nodes))
    unsupported = sorted(set(requests) - supported)
    if unsupported:
        # internaltypes/resource_list_factory.go, FromJobResourceListFailOnUnknown
        return Placement(
            rejection=f'invalid resource request: resource type "{unsupported[0]}" is not '
            "supported (if you want to use it, add to supported resource types or floating "
            "resources in the scheduler config)"
        )
    for node in nodes:
        if all(amount <= node.capacity(name) for name, amount in requests.items()):
            return Placement(node=node.name)
    return Placement(rejection=unschedulable_reason(len(nodes)))


def unschedulable_reason(excluded: int) -> str:
    """submitcheck.go's reason for a job no node can take: the pool and its pod context.

    The pod context is ``PodSchedulingContext.String()`` (scheduling/context/pod.go), a
    tab-aligned table; every node is excluded for lack of resources.
    """
    header = [("Node:", "none"), ("Number of nodes in cluster:", str(excluded))]
    lines = [f"pool {POOL}:", *_aligned(header), "Excluded nodes:"]
    lines += [" " + row for row in _aligned([(f"{excluded}:", INSUFFICIENT_RESOURCES)])]
    return "\n".join(lines) + "\n\n---\n"


def _aligned(rows: Iterable[tuple[str, str]]) -> list[str]:
    """Two columns as Go's tabwriter lays them out (padding 1)."""
    rows = list(rows)
    width = max(len(label) for label, _ in rows) + 1
    return [label.ljust(width) + value for label, value in rows]
