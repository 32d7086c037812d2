"""coglet (cog-rs): the Rust prediction server behind `python -m cog.server.http`.

`coglet.server.serve(...)` runs the HTTP server (parent process); the worker subprocess runs
`coglet._run_worker()`. `coglet._sdk` holds what `cog.current_scope()` returns.
"""

from ._impl import CancelationException, __version__, _run_worker, _sdk, serve


class _Server:
    """`coglet.server`: Cog's spelling of the entry points."""

    serve = staticmethod(serve)
    _run_worker = staticmethod(_run_worker)


server = _Server()

__all__ = ["CancelationException", "__version__", "_run_worker", "_sdk", "serve", "server"]
