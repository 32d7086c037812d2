"""`Annotated[T, Opaque]`: pass `T` through as an opaque JSON object."""


class Opaque:
    """Marker for `typing.Annotated`: the schema treats the value as `{"type": "object"}`
    (keeping a list's shape) and the runtime passes it through unchanged."""
