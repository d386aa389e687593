"""``Startable``: a server or process set that is started, used, and stopped by its owner."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType


class Startable(abc.ABC):
    """``start()`` returns the started object; ``with`` starts it and always stops it."""

    @abc.abstractmethod
    def start(self) -> Self:
        """Start, and wait until ready; the object itself."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop whatever ``start()`` started (safe to call more than once)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
