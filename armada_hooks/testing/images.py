"""Whether a job's pod can start, judged by its container images as Kubernetes judges them.

Two places refuse a bad image, and Armada's executor reports each its own way:

- The API server refuses to create a pod whose image is empty or padded with whitespace
  (Kubernetes' ``ValidatePod``). The executor's pod submission fails unrecoverably and it
  fails the job with the API server's message (``internal/executor/service/
  cluster_allocation.go``); no pod, so no pending event.
- The kubelet cannot parse any other malformed reference (``distribution/reference``'s
  grammar) and leaves the container waiting with reason ``InvalidImageName``. The
  executor's pending-pod check for that reason has a 0 s grace period and action Fail
  (``config/executor/config.yaml``), so the job fails at once after its pending event,
  with the message ``internal/executor/podchecks/container_state_checks.go`` writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from armada_hooks.testing.gofmt import go_quote

if TYPE_CHECKING:
    from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1

# distribution/reference regexp.go, in Go's (ASCII) regular-expression dialect.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = r"(?:" + _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REFERENCE = re.compile(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?", re.ASCII)
_ANCHORED_NAME = re.compile(r"(?:(" + _DOMAIN_AND_PORT + r")/(" + _REMOTE_NAME + r"))?", re.ASCII)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}  # go-digest's algorithms
MAX_REPOSITORY_NAME = 255

INVALID_IMAGE_NAME = "InvalidImageName"
_CHECK_NAME = "check-0"  # the executor's first container-status check (InvalidImageName)


@dataclass(frozen=True)
class StartFailure:
    """Why a pod cannot start; ``pod_created`` False when the API server refused the pod."""

    message: str
    pod_created: bool


def reference_error(image: str) -> str:
    """Why ``distribution/reference``'s ParseNormalizedNamed refuses ``image`` ('' if it parses)."""
    if _IDENTIFIER.fullmatch(image):
        return f"invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"
    domain, remainder = _split_docker_domain(image)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        return f"invalid reference format: repository name ({remote}) must be lowercase"
    return _parse_error(f"{domain}/{remainder}")


def _split_docker_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    looks_like_domain = any(c in first for c in ".:") or first == "localhost"
    if not slash or not (looks_like_domain or first.lower() != first):
        domain, remainder = "docker.io", name
    else:
        domain, remainder = first, rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder


def _parse_error(reference: str) -> str:
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        if not reference:
            return "repository name must have at least one component"
        if _REFERENCE.fullmatch(reference.lower()):
            return "repository name must be lowercase"
        return "invalid reference format"
    name = _ANCHORED_NAME.fullmatch(match.group(1))
    path = name.group(2) if name and name.group(2) else match.group(1)
    if len(path) > MAX_REPOSITORY_NAME:
        return f"repository name must not be more than {MAX_REPOSITORY_NAME} characters"
    return _digest_error(match.group(3) or "")


def _digest_error(digest: str) -> str:
    """go-digest's Validate of a digest the reference grammar accepted."""
    if not digest:
        return ""
    algorithm, _, encoded = digest.partition(":")
    size = _DIGEST_HEX_LENGTHS.get(algorithm)
    if size is None:
        return "unsupported digest algorithm"
    if len(encoded) != size:
        return "invalid checksum digest length"
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        return "invalid checksum digest format"
    return ""


def start_failure(pod: core_v1.PodSpec, pod_name: str) -> StartFailure | None:
    """How the pod fails to start because of its images, or None if they are all valid."""
    refused = _api_server_errors(pod)
    if refused:
        detail = refused[0] if len(refused) == 1 else "[" + ", ".join(refused) + "]"
        return StartFailure(f"Pod {go_quote(pod_name)} is invalid: {detail}", pod_created=False)
    waiting = _container_check_messages(pod)
    if not any(waiting):
        return None
    return StartFailure(
        "Unable to start pod - encountered an unrecoverable problem.\n" + "\n".join(waiting),
        pod_created=True,
    )


def _api_server_errors(pod: core_v1.PodSpec) -> list[str]:
    """ValidatePod's image errors, in its order: required ones first, then whitespace."""
    groups = (("spec.containers", pod.containers), ("spec.initContainers", pod.initContainers))
    errors = [
        f"{path}[{i}].image: Required value"
        for path, containers in groups
        for i, c in enumerate(containers)
        if not c.image
    ]
    errors += [
        f"{path}[{i}].image: Invalid value: {go_quote(c.image)}: "
        "must not have leading or trailing whitespace"
        for path, containers in groups
        for i, c in enumerate(containers)
        if c.image and c.image != c.image.strip()
    ]
    return errors


def _container_check_messages(pod: core_v1.PodSpec) -> list[str]:
    """The executor's message per container status (app containers, then init containers).

    Init containers start one by one before the app containers, so the first with a bad
    image is the only one waiting on it; otherwise every app container with one is.
    """
    init = [_waiting_message(c) for c in pod.initContainers]
    first_bad = next((i for i, message in enumerate(init) if message), None)
    if first_bad is not None:
        init = [message if i == first_bad else "" for i, message in enumerate(init)]
        return [""] * len(pod.containers) + init
    return [_waiting_message(c) for c in pod.containers] + init


def _waiting_message(container: core_v1.Container) -> str:
    error = reference_error(container.image)
    if not error:
        return ""
    image = go_quote(container.image)
    kubelet = (
        f"Failed to apply default image tag {image}: "
        f"couldn't parse image reference {image}: {error}"
    )
    return (
        f"Container {container.name} has been in state Waiting for reason {INVALID_IMAGE_NAME} "
        f"({kubelet} - check {go_quote(_CHECK_NAME)}) for more than timeout 0s"
    )
