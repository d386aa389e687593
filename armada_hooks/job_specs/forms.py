"""Which form a job request dict is in, and the job item it stands for.

- a job item: Armada's ``JobSubmitRequestItem`` (``podSpec``, ``namespace``, ...);
- a bare pod spec: it has ``containers``;
- a Pod manifest (``kind: Pod``): its ``spec``, with the namespace, labels and
  annotations of its ``metadata`` (its name is not used: Armada names jobs by id).

A pod spec or a manifest without a namespace runs in ``default``, where ``kubectl`` would
create it. Paths in errors are the user's own keys, from where the request starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from armada_hooks.job_specs.fields import (
    Path,
    find_field,
    loose,
    message_json,
    not_a_field,
    show,
    spec_error,
)

DEFAULT_NAMESPACE = "default"
USED_METADATA = ("namespace", "labels", "annotations")  # the rest (name, uid, ...) is ignored
MANIFEST_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")  # status is ignored


@dataclass(frozen=True)
class ItemJson:
    """A job item's protobuf-JSON, and where its pod specs were in the user's request."""

    json: dict[str, Any]
    pod_paths: tuple[Path, ...]  # one per pod spec: ``pod_spec`` first, then ``pod_specs``


def item_json(request: Mapping[Any, Any], path: Path = ()) -> ItemJson:
    """The job item ``request`` stands for, in any of the three forms."""
    from armada_client.armada import submit_pb2
    from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1

    keys = {loose(k): k for k in request if isinstance(k, str)}
    if "kind" in keys:
        return _manifest(request, keys, path)
    if "containers" in keys:
        pod = message_json(request, core_v1.PodSpec.DESCRIPTOR, path)
        return ItemJson({"namespace": DEFAULT_NAMESPACE, "podSpec": pod}, (path,))
    item = message_json(request, submit_pb2.JobSubmitRequestItem.DESCRIPTOR, path)
    pod_paths = [(*path, keys["podspec"])] if "podSpec" in item else []
    pod_paths += [(*path, keys["podspecs"], i) for i in range(len(item.get("podSpecs", [])))]
    return ItemJson(item, tuple(pod_paths))


def _manifest(manifest: Mapping[Any, Any], keys: dict[str, str], path: Path) -> ItemJson:
    from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1

    extra = sorted(keys.keys() - {loose(k) for k in MANIFEST_KEYS})
    if extra:
        parts = ", ".join(MANIFEST_KEYS[:4])
        raise spec_error((*path, keys[extra[0]]), f"is not part of a Pod manifest ({parts})")
    kind = manifest[keys["kind"]]
    if kind != "Pod":
        raise spec_error(
            (*path, keys["kind"]),
            f"{show(kind)}: only a Pod manifest (kind: Pod) can be a job request; give its pod "
            "spec (spec.template.spec of a Job or Deployment) instead",
        )
    version = manifest.get(keys.get("apiversion", "apiVersion"), "v1")
    if version != "v1":
        raise spec_error((*path, keys["apiversion"]), f"{show(version)}: a Pod's apiVersion is v1")
    spec = manifest.get(keys.get("spec", "spec"))
    if spec is None:
        raise spec_error(path, "a Pod manifest needs a spec (the pod spec to run)")
    spec_path = (*path, keys["spec"])
    meta_key = keys.get("metadata", "metadata")
    meta = _metadata(manifest.get(meta_key), (*path, meta_key))
    item: dict[str, Any] = {
        "namespace": meta.get("namespace") or DEFAULT_NAMESPACE,
        "podSpec": message_json(spec, core_v1.PodSpec.DESCRIPTOR, spec_path),
    }
    item.update({k: meta[k] for k in ("labels", "annotations") if meta.get(k)})
    return ItemJson(item, (spec_path,))


def _metadata(metadata: object, path: Path) -> dict[str, Any]:
    """The namespace, labels and annotations of a manifest's ``metadata``.

    Other ObjectMeta fields are ignored (a pasted ``kubectl get -o yaml`` has many), but a
    key that is no ObjectMeta field at all is an error: it may be a misspelt ``labels``.
    """
    from armada_client.k8s.io.apimachinery.pkg.apis.meta.v1 import generated_pb2 as meta_v1

    descriptor = meta_v1.ObjectMeta.DESCRIPTOR
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        return message_json(metadata, descriptor, path)  # raises: not a mapping
    used = {}
    for key, value in metadata.items():
        field = find_field(descriptor, key)
        if field is None:
            raise not_a_field((*path, str(key)), descriptor)
        if field.name in USED_METADATA:
            used[key] = value
    return message_json(used, descriptor, path)
