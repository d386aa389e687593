"""One ``google/api/http.proto`` per process: armada_client's copy gives way to Google's.

armada_client compiles ``google/api/http.proto`` and ``annotations.proto`` into its own
``armada_client.google.api`` package (Armada's ``scripts/build-python-client.sh``) under
the file names that googleapis-common-protos registers too. protobuf's default descriptor
pool (upb or C++) takes a file name a second time only if the bytes are identical, and
armada_client's ``http.proto`` is not (it sets the C++ file option ``cc_enable_arenas`` to
its default, which Google's copy leaves unset): whichever loads second raises "duplicate
file name google/api/http.proto".

:class:`GoogleApiProtos`, first on ``sys.meta_path``, makes the two module names one module:

- ``armada_client.google.api.X_pb2`` is Google's ``google.api.X_pb2`` whenever
  googleapis-common-protos is installed (Armada's protos name their dependency
  ``google/api/annotations.proto``, so the pool resolves it to Google's file);
- ``google.api.X_pb2`` is armada_client's module when that copy loaded first (imported
  before armada-hooks was), since the pool then holds armada_client's file for good.

The messages and the ``google.api.http`` method option are the same in both copies. Both
lookups run only when one of those modules is imported; this module imports nothing else.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

ARMADA_TO_GOOGLE = {
    "armada_client.google.api.http_pb2": "google.api.http_pb2",
    "armada_client.google.api.annotations_pb2": "google.api.annotations_pb2",
}
GOOGLE_TO_ARMADA = {google: armada for armada, google in ARMADA_TO_GOOGLE.items()}


class ModuleAlias:
    """A loader that makes the imported name another name for ``target``'s module.

    Not an ``importlib.abc.Loader`` subclass: importing that loads ``importlib.resources``.
    """

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> None:
        """The default empty module: the import system swaps in what ``exec_module`` puts."""

    def exec_module(self, module: ModuleType) -> None:
        """Import ``target`` and put it in ``sys.modules`` under the imported name."""
        import importlib

        sys.modules[module.__name__] = importlib.import_module(self.target)


def findable(name: str) -> bool:
    """Whether ``name`` can be imported, found without running it."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package is missing
        return False


def loaded_by_its_own_copy(name: str) -> bool:
    """Whether ``name`` is in ``sys.modules`` as itself, not as an alias being loaded."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not isinstance(getattr(spec, "loader", None), ModuleAlias)


class GoogleApiProtos:
    """The meta path finder that serves one module for both copies of Google's API protos."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """An alias spec for the two names it knows; None (the usual search) otherwise."""
        if fullname in ARMADA_TO_GOOGLE:
            other = ARMADA_TO_GOOGLE[fullname]
            alias = findable(other)
        elif fullname in GOOGLE_TO_ARMADA:
            other = GOOGLE_TO_ARMADA[fullname]
            alias = loaded_by_its_own_copy(other)
        else:
            return None
        if not alias:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, cast("Loader", ModuleAlias(other)))


def install() -> None:
    """Put :class:`GoogleApiProtos` first on ``sys.meta_path`` (once per process)."""
    if not any(isinstance(finder, GoogleApiProtos) for finder in sys.meta_path):
        sys.meta_path.insert(0, GoogleApiProtos())
