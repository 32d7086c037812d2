"""`Input()` and the `FieldInfo` it returns: metadata and constraints of a run() parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NUMBER = (int, float)


@dataclass(frozen=True)
class FieldInfo:
    """What `Input(...)` returns. Read statically by the schema generator and at run time by the
    worker, which substitutes `default` for parameters the request omits."""

    default: Any = None
    description: str | None = None
    ge: int | float | None = None
    le: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    regex: str | None = None
    choices: list[str | int] | None = None
    deprecated: bool | None = None
    accept: str | None = None


def _check_number(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, _NUMBER)):
        raise TypeError(f"Input() argument {name!r} must be a number, got {type(value).__name__}")


def _check_length(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Input() argument {name!r} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"Input() argument {name!r} must be >= 0, got {value}")


class _NoDefault:
    def __repr__(self) -> str:
        return "<no default>"


_NO_DEFAULT: Any = _NoDefault()


def Input(
    default: Any = _NO_DEFAULT,
    *,
    description: str | None = None,
    ge: int | float | None = None,
    le: int | float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    regex: str | None = None,
    choices: list[str | int] | None = None,
    deprecated: bool | None = None,
    accept: str | None = None,
    **kwargs: Any,
) -> Any:
    """Describe a run() parameter: `prompt: str = Input(description="...", default="hi")`.

    Without `default` the input is required (unless its type admits None); `default=None` makes
    it optional whatever its type, as in Cog <= 0.16: left out or null, run() gets None. The
    returned FieldInfo's `default` is None in both cases; `_default_given` tells them apart.
    Constraints are checked here, when the module is imported, so a typo fails at setup rather
    than at the first request.
    """
    default_given = default is not _NO_DEFAULT
    if not default_given:
        default = None
    if "default_factory" in kwargs:
        raise TypeError(
            "default_factory is not supported in Input() — use a literal default value instead"
        )
    if kwargs:
        unknown = ", ".join(sorted(kwargs))
        raise TypeError(f"Input() got unexpected keyword argument(s): {unknown}")
    if description is not None and not isinstance(description, str):
        raise TypeError("Input() argument 'description' must be a string")
    _check_number("ge", ge)
    _check_number("le", le)
    if ge is not None and le is not None and ge > le:
        raise ValueError(f"Input() has ge={ge} greater than le={le}")
    _check_length("min_length", min_length)
    _check_length("max_length", max_length)
    if min_length is not None and max_length is not None and min_length > max_length:
        raise ValueError(
            f"Input() has min_length={min_length} greater than max_length={max_length}"
        )
    if regex is not None:
        if not isinstance(regex, str):
            raise TypeError("Input() argument 'regex' must be a string")
        try:
            re.compile(regex)
        except re.error as e:
            raise ValueError(f"Input() argument 'regex' is not a valid pattern: {e}") from e
    if choices is not None:
        if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
            raise TypeError("Input() argument 'choices' must be a list")
        choices = list(choices)
        if not choices:
            raise ValueError("Input() argument 'choices' must not be empty")
        if default is not None and default not in choices:
            raise ValueError(f"Input() default {default!r} is not one of the choices {choices!r}")
    if deprecated is not None and not isinstance(deprecated, bool):
        raise TypeError("Input() argument 'deprecated' must be a bool")
    if accept is not None and not isinstance(accept, str):
        raise TypeError("Input() argument 'accept' must be a string such as 'image/*,.pdf'")
    info = FieldInfo(
        default=default,
        description=description,
        ge=ge,
        le=le,
        min_length=min_length,
        max_length=max_length,
        regex=regex,
        choices=choices,
        deprecated=deprecated,
        accept=accept,
    )
    # Not a dataclass field: FieldInfo's fields, repr and equality stay Cog's.
    object.__setattr__(info, "_default_given", default_given)
    return info
