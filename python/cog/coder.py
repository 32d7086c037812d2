"""Custom type coders: encode a user type to a JSON dict and back."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any


class Coder:
    """Base class of a coder. Register subclasses with `Coder.register(MyCoder)`."""

    _coders: set[type[Coder]] = set()

    @staticmethod
    def register(coder: type[Coder]) -> None:
        Coder._coders.add(coder)

    @staticmethod
    def lookup(tpe: Any) -> Coder | None:
        """The first registered coder whose `factory` accepts `tpe`, or None."""
        for cls in Coder._coders:
            coder = cls.factory(tpe)
            if coder is not None:
                return coder
        return None

    @staticmethod
    @abstractmethod
    def factory(tpe: Any) -> Coder | None: ...

    @abstractmethod
    def encode(self, x: Any) -> dict[str, Any]: ...

    @abstractmethod
    def decode(self, x: dict[str, Any]) -> Any: ...
