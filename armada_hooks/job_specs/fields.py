"""A user's dict read against a protobuf message's fields, into protobuf-JSON.

What does not fit raises :class:`ArmadaJobSpecError` naming the field path and the fault.

Keys may be protobuf-JSON names (``podSpec``), proto names (``pod_spec``) or either
spelled with other case and underscores (``restart_policy``, ``host_ipc``, as the
Kubernetes Python client's ``to_dict()`` writes them). ``None`` means "not set". Kubernetes
quantities may be strings, numbers or protobuf's ``{"string": "100m"}``; an
``IntOrString`` (a probe's port) may be a number or a string, as in a manifest.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from armada_hooks.errors import ArmadaJobSpecError
from armada_hooks.job_specs.quantities import quantity_text

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor, FieldDescriptor

Path = tuple[str | int, ...]

QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
# Structs that Kubernetes' Go types embed (``json:""`` in k8s.io/api core/v1 types.go): in a
# manifest their fields sit in the parent (a volume's ``emptyDir``, a probe's ``httpGet``, a
# key selector's ``name``); in protobuf they are one field of the parent. Both are read.
INLINE_FIELDS = {
    f"k8s.io.api.core.v1.{message}": field
    for field, messages in {
        "volumeSource": ("Volume",),
        "handler": ("Probe",),
        "ephemeralContainerCommon": ("EphemeralContainer",),
        "localObjectReference": (
            "ConfigMapEnvSource",
            "ConfigMapKeySelector",
            "ConfigMapProjection",
            "ConfigMapVolumeSource",
            "SecretEnvSource",
            "SecretKeySelector",
            "SecretProjection",
        ),
    }.items()
    for message in messages
}

# FieldDescriptor.TYPE_* numbers, by what a JSON value must be for them.
_STRING, _BYTES, _BOOL, _ENUM = 9, 12, 8, 14
_PLAIN_KEY = re.compile(r"[A-Za-z_][\w./-]*")  # shown bare in a path; others quoted
_INTEGER = re.compile(r"[-+]?[0-9]+")  # as a string: what protobuf's JSON parser takes
_FLOATS = frozenset({1, 2})  # double, float
_INT_RANGES = {
    **dict.fromkeys((5, 15, 17), (-(2**31), 2**31)),  # int32, sfixed32, sint32
    **dict.fromkeys((13, 7), (0, 2**32)),  # uint32, fixed32
    **dict.fromkeys((3, 16, 18), (-(2**63), 2**63)),  # int64, sfixed64, sint64
    **dict.fromkeys((4, 6), (0, 2**64)),  # uint64, fixed64
}


def show_path(path: Path) -> str:
    """``("podSpec", "containers", 0, "name")`` → ``podSpec.containers[0].name``.

    A key that is not a plain name (empty, or with spaces or quotes) is shown quoted in
    brackets, ``labels["my label"]``, so that every error can say where it is.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part) is None:
            text += f"[{json.dumps(part)}]"
        else:
            text += f".{part}" if text else part
    return text


def spec_error(path: Path, problem: str) -> ArmadaJobSpecError:
    """The error for ``problem`` at ``path`` (``podSpec.containers[0]: ...``)."""
    return ArmadaJobSpecError(f"{show_path(path)}: {problem}" if path else problem)


def show(value: object) -> str:
    """A value as the user wrote it (JSON where it can be)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def loose(key: str) -> str:
    """A key without case or underscores: how ``restart_policy`` finds ``restartPolicy``."""
    return key.replace("_", "").lower()


def message_json(value: object, descriptor: Descriptor, path: Path) -> dict[str, Any]:
    """``value`` read as a ``descriptor`` message: its protobuf-JSON dict."""
    if not isinstance(value, Mapping):
        raise spec_error(path, f"expected a mapping (a {descriptor.name}), got {_kind(value)}")
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    embedded: dict[Any, Any] = {}  # the fields of an inline struct, written in the parent
    inline = INLINE_FIELDS.get(descriptor.full_name)
    for key, item in value.items():
        field = find_field(descriptor, key)
        if field is None and inline is not None:
            embedded[key] = item
            continue
        if field is None:
            raise not_a_field((*path, str(key)), descriptor)
        if item is None:
            continue
        if field.json_name in given:
            raise spec_error((*path, key), f"is given twice (also as {given[field.json_name]!r})")
        given[field.json_name] = key
        out[field.json_name] = _field_json(item, field, (*path, key))
    inner = descriptor.fields_by_name[inline].message_type if inline else None
    if inline and inner and embedded:
        if inline in out:
            also = f"also inline, as {next(iter(embedded))!r}"
            raise spec_error((*path, given[inline]), f"is given twice ({also})")
        out[inline] = message_json(embedded, inner, path)
    return out


def find_field(descriptor: Descriptor, key: object) -> FieldDescriptor | None:
    """The field of ``descriptor`` that ``key`` names, in any accepted spelling."""
    if not isinstance(key, str):
        return None
    fields = _fields(descriptor)
    return fields.get(key) or fields.get(loose(key))


def not_a_field(path: Path, descriptor: Descriptor) -> ArmadaJobSpecError:
    """The error for a key (the last part of ``path``) that names no field of ``descriptor``."""
    import difflib

    key = str(path[-1])
    close = difflib.get_close_matches(key, [f.json_name for f in descriptor.fields], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return spec_error(path, f"is not a field of {descriptor.name}{hint}")


def _field_json(value: object, field: FieldDescriptor, path: Path) -> Any:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, Mapping):
            raise spec_error(path, f"expected a mapping, got {_kind(value)}")
        value_field = entry.fields_by_name["value"]
        for key in value:
            if not _encodable(str(key)):
                raise spec_error(path, f"key {show(key)} is not text UTF-8 can encode")
        return {str(k): _single(v, value_field, (*path, str(k))) for k, v in value.items()}
    if field.is_repeated:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
            raise spec_error(path, f"expected a list, got {_kind(value)}")
        return [_single(v, field, (*path, i)) for i, v in enumerate(value)]
    return _single(value, field, path)


def _single(value: object, field: FieldDescriptor, path: Path) -> Any:
    message = field.message_type
    if message is None:
        _check_scalar(value, field, path)
        return value
    if message.full_name == QUANTITY:
        if isinstance(value, Mapping) and set(value) == {"string"}:
            value = value["string"]
        text = quantity_text(value)
        if text is None:
            raise spec_error(path, f"{show(value)} is not a Kubernetes quantity")
        return {"string": text}
    if message.full_name == INT_OR_STRING and not isinstance(value, Mapping):
        if isinstance(value, int) and not isinstance(value, bool):
            return {"type": 0, "intVal": value}
        if isinstance(value, str):
            return {"type": 1, "strVal": value}
        raise spec_error(path, f"{show(value)} is neither a number nor a string")
    return message_json(value, message, path)


def _check_scalar(value: object, field: FieldDescriptor, path: Path) -> None:
    kind = field.type
    if kind in (_STRING, _BYTES):
        ok, expected = isinstance(value, str), "a string"
        if isinstance(value, str) and not _encodable(value):
            ok, expected = False, "text (it holds a lone surrogate, which UTF-8 cannot encode)"
    elif kind == _BOOL:
        ok, expected = isinstance(value, bool), "true or false"
    elif kind == _ENUM and field.enum_type is not None:
        names = [v.name for v in field.enum_type.values]
        ok = value in names or _is_int(value, (-(2**31), 2**31))
        expected = f"one of {', '.join(names)}"
    elif kind in _FLOATS:
        ok, expected = _is_number(value), "a number"
    else:
        low, high = _INT_RANGES[kind]
        ok = _is_int(value, (low, high))
        expected = "a whole number" + (" ≥ 0" if low == 0 else "")
    if not ok:
        raise spec_error(path, f"{show(value)} is not {expected}")


def _is_int(value: object, bounds: tuple[int, int]) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):  # protobuf-JSON writes 64-bit integers as strings
        if _INTEGER.fullmatch(value) is None:
            return False
        value = int(value)
    return isinstance(value, int) and bounds[0] <= value < bounds[1]


def _is_number(value: object) -> bool:
    """A finite number, or its text (protobuf-JSON's NaN and Infinity mean nothing here)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:  # past a double's range
            return False
    return isinstance(value, float) and math.isfinite(value)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """Each field under its JSON name, its proto name and its loose spelling."""
    index: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        index.setdefault(loose(field.name), field)
    for field in descriptor.fields:
        index[field.name] = index[field.json_name] = field
    return index


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
