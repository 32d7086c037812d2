"""coglet (cog-rs): the Rust prediction server behind `python -m cog.server.http`.

`coglet.server.serve(...)` runs the HTTP server (parent process); the worker subprocess runs
`coglet.server._run_worker()`. `coglet.__build__` says what this extension was built from,
and `coglet._sdk` holds what `cog.current_scope()` returns and the worker's log writers.
"""

from ._impl import CancelationException, __build__, __version__, server
from ._impl import _run_worker as _run_worker  # the worker's entry point, as server._run_worker
from ._impl import _sdk as _sdk

__all__ = ["CancelationException", "__build__", "__version__", "server"]
