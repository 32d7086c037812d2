"""`cog.BaseModel`: structured outputs with dataclass semantics."""

from __future__ import annotations

from dataclasses import dataclass, is_dataclass
from typing import Any

# Set on every subclass: whether `__init_subclass__` made it a dataclass. A child that opts
# out while its parent opted in would inherit dataclass fields it never initialises.
_AUTO_DATACLASS = "_cog_auto_dataclass"


class BaseModel:
    """Subclasses become dataclasses automatically:

        class Output(BaseModel):
            text: str
            score: float = 0.0

    Pass `auto_dataclass=False` to opt out (then the class handles its own `__init__`), or
    dataclass options (`frozen=True`, ...) as class keywords. The first base class must be a
    BaseModel, and other dataclasses cannot be mixed in. A pydantic v2 `BaseModel` is also
    accepted as an output type.
    """

    def __init_subclass__(
        cls, *, auto_dataclass: bool = True, init: bool = True, **kwargs: Any
    ) -> None:
        super().__init_subclass__()
        primary = cls.__bases__[0]
        # Cog's messages, word for word: users and Cog's tests match on them.
        if not (isinstance(primary, type) and issubclass(primary, BaseModel)):
            raise TypeError(f'Primary base class of "{cls.__name__}" must inherit from BaseModel')
        if not auto_dataclass and primary is not BaseModel and getattr(primary, _AUTO_DATACLASS):
            raise ValueError(
                f'Primary base class of "{cls.__name__}" ("{primary.__name__}") has '
                f'auto_dataclass=True, but "{cls.__name__}" has auto_dataclass=False. '
                "This creates broken field inheritance."
            )
        for base in cls.__bases__[1:]:
            if is_dataclass(base):
                raise TypeError(
                    f'Cannot mixin dataclass "{base.__name__}" while inheriting from `BaseModel`'
                )
        setattr(cls, _AUTO_DATACLASS, auto_dataclass)
        if not auto_dataclass:
            # From here down the hierarchy the user owns the dataclass semantics.
            return
        if kwargs.get("slots"):
            # slots=True makes dataclass() return a new class, which __init_subclass__ cannot do.
            raise TypeError(f"{cls.__name__}: slots=True is not supported on cog.BaseModel")
        dataclass(init=init, **kwargs)(cls)
