"""`cog.BaseModel`: structured outputs with dataclass semantics."""

from __future__ import annotations

from dataclasses import dataclass, is_dataclass
from typing import Any


class BaseModel:
    """Subclasses become dataclasses automatically:

        class Output(BaseModel):
            text: str
            score: float = 0.0

    Pass `auto_dataclass=False` to opt out, or dataclass options (`frozen=True`, ...) as class
    keywords. A pydantic v2 `BaseModel` is also accepted as an output type.
    """

    def __init_subclass__(
        cls, *, auto_dataclass: bool = True, init: bool = True, **kwargs: Any
    ) -> None:
        super().__init_subclass__()
        if not auto_dataclass:
            return
        primary = cls.__bases__[0]
        if not (isinstance(primary, type) and issubclass(primary, BaseModel)):
            raise TypeError(
                f"{cls.__name__}: the primary (first) base class must be a cog.BaseModel, "
                f"got {primary.__name__}"
            )
        for base in cls.__bases__[1:]:
            if is_dataclass(base) and not issubclass(base, BaseModel):
                raise TypeError(
                    f"{cls.__name__}: mixing in the dataclass {base.__name__} is not supported; "
                    "inherit from cog.BaseModel only"
                )
        if kwargs.get("slots"):
            # slots=True makes dataclass() return a new class, which __init_subclass__ cannot do.
            raise TypeError(f"{cls.__name__}: slots=True is not supported on cog.BaseModel")
        dataclass(init=init, **kwargs)(cls)
