"""Generate the job service's stubs from its ``.proto`` files (``make protos``).

grpcio-tools (a dev dependency) compiles ``protos/*.proto`` into ``*_pb2.py`` and
``*_pb2_grpc.py``; mypy-protobuf's plugins write typed ``.pyi`` stubs beside them. The
paths are given relative to the repository root, so the generated modules import each
other as ``armada_hooks.jobservice.protos.X_pb2``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PROTOS = Path(__file__).resolve().parent / "protos"
ROOT = PROTOS.parents[2]  # the directory holding the armada_hooks package
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    """The ``.proto`` files of the job service, sorted."""
    return sorted(PROTOS.glob("*.proto"))


def generated_files(directory: Path = PROTOS) -> list[Path]:
    """The generated modules in ``directory`` (one set per ``.proto``), sorted."""
    return sorted(
        directory / f"{proto.stem}{suffix}"
        for proto in proto_files()
        for suffix in GENERATED_SUFFIXES
    )


def _plugin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is missing: install the dev dependencies (make setup)")
    return found


def generate(out: Path) -> list[Path]:
    """Compile every ``.proto`` into ``out`` (mirroring the package path); return the files.

    :raises RuntimeError: protoc failed (its message says why) or a plugin is missing.
    """
    import importlib.resources

    from grpc_tools import protoc

    includes = str(importlib.resources.files("grpc_tools") / "_proto")
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{ROOT}",
        f"-I{includes}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:  # type: ignore[no-untyped-call]
        raise RuntimeError(f"protoc failed on {', '.join(p.name for p in proto_files())}")
    return generated_files(out / PROTOS.relative_to(ROOT))


def main() -> None:
    """Regenerate the checked-in stubs in place."""
    for path in generate(ROOT):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
