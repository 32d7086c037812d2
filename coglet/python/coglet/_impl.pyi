"""Type stubs for the PyO3 extension `coglet._impl`."""

from typing import final

from . import _sdk as _sdk

__version__: str

class CancelationException(BaseException):
    """Raised inside a sync run() when its prediction is canceled. Re-raise it."""

@final
class BuildInfo:
    """`coglet.__build__`: what this extension was built from (frozen)."""

    @property
    def version(self) -> str: ...
    @property
    def git_sha(self) -> str: ...
    @property
    def build_time(self) -> str: ...
    @property
    def rustc_version(self) -> str: ...

@final
class Server:
    """`coglet.server` (frozen; repr `coglet.server`)."""

    @property
    def active(self) -> bool:
        """True inside a worker subprocess."""
    def serve(
        self,
        predictor_ref: str | None = None,
        host: str = "0.0.0.0",
        port: int = 5000,
        await_explicit_shutdown: bool = False,
        is_train: bool = False,
        upload_url: str | None = None,
    ) -> None:
        """Run the prediction server until shutdown (GIL released). Logs `Starting coglet
        server on HOST:PORT` once bound (`port=0` picks a free port). Other settings come from
        the environment: COG_MAX_CONCURRENCY, COG_SETUP_TIMEOUT, COG_WEIGHTS, ..."""
    def _run_worker(self) -> None:
        """The worker subprocess's entry point; call from the main thread."""

__build__: BuildInfo
server: Server

def _run_worker() -> None:
    """The worker subprocess's entry point; call from the main thread."""
