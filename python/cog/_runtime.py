"""What the SDK borrows from the `coglet` runtime, with stand-ins when it is not installed.

The SDK is importable without coglet (schema tooling, unit tests, type checkers); then
`current_scope()` is a no-op scope and `CancelationException` is a local class.
"""

from __future__ import annotations

from typing import Any

try:
    import coglet as _coglet
    from coglet import CancelationException
except ImportError:  # coglet is not installed: pure-Python stand-ins
    _coglet = None

    class CancelationException(BaseException):  # type: ignore[no-redef]
        """Raised inside a sync run() when its prediction is canceled. Re-raise it."""


class _NoopMetrics:
    def record(self, key: str, value: Any, mode: str = "replace") -> None:
        del key, value, mode

    def delete(self, key: str) -> None:
        del key

    def __setitem__(self, key: str, value: Any) -> None:
        del key, value

    def __delitem__(self, key: str) -> None:
        del key


class _NoopScope:
    """The scope outside a prediction: records nothing, has an empty context."""

    def __init__(self) -> None:
        self.metrics = _NoopMetrics()
        self.context: dict[str, str] = {}

    def record_metric(self, key: str, value: Any, mode: str = "replace") -> None:
        del key, value, mode


_NOOP_SCOPE = _NoopScope()


def current_scope() -> Any:
    if _coglet is None:
        return _NOOP_SCOPE
    return _coglet._sdk.current_scope()
