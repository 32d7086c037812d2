"""Type stubs for the PyO3 extension `coglet._impl`."""

from . import _sdk as _sdk

__version__: str

class CancelationException(BaseException):
    """Raised inside a sync run() when its prediction is canceled. Re-raise it."""

def serve(
    predictor_ref: str | None = None,
    host: str = "0.0.0.0",
    port: int = 5000,
    await_explicit_shutdown: bool = False,
    is_train: bool = False,
    upload_url: str | None = None,
) -> None:
    """Run the prediction server until shutdown (GIL released). Other settings come from the
    environment: COG_MAX_CONCURRENCY, COG_SETUP_TIMEOUT, COG_WEIGHTS, WEBHOOK_AUTH_TOKEN, ..."""

def _run_worker() -> None:
    """The worker subprocess's entry point; call from the main thread."""
