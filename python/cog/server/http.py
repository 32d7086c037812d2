"""`python -m cog.server.http`: start the coglet prediction server for this image's runner.

The runner ref comes from `COG_PREDICT_TYPE_STUB` (or `COG_TRAIN_TYPE_STUB` with
`--x-mode train`), the port from `PORT` (default 5000). The HTTP server, worker and IPC are
Rust (coglet); this module only parses Cog's command line and hands over.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..mode import Mode

DEFAULT_PORT = 5000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cog.server.http", description=__doc__)
    parser.add_argument(
        "-v", "--version", action="store_true", help="print the coglet version and exit"
    )
    parser.add_argument("--host", dest="host", type=str, default="0.0.0.0")
    parser.add_argument(
        "--threads", dest="threads", type=int, default=None, help="accepted and ignored"
    )
    parser.add_argument("--upload-url", dest="upload_url", type=str, default=None)
    # Cog declares this with type=bool, so any non-empty value (even "false") means True.
    parser.add_argument(
        "--await-explicit-shutdown", dest="await_explicit_shutdown", type=bool, default=False
    )
    parser.add_argument(
        "--x-mode", dest="mode", type=Mode, default=Mode.PREDICT, choices=list(Mode)
    )
    return parser


def _port() -> int:
    raw = os.environ.get("PORT", "")
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        print(f"cog: invalid PORT environment variable {raw!r}: expected 1-65535", file=sys.stderr)
        sys.exit(1)
    return port


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        import coglet
    except ImportError as e:
        print(
            f"cog: the coglet runtime is not installed ({e}); install the coglet wheel "
            "built from this repository next to the cog SDK",
            file=sys.stderr,
        )
        return 1
    if args.version:
        print(f"coglet (Rust) {coglet.__version__}")
        return 0

    is_train = args.mode is Mode.TRAIN
    env_name = "COG_TRAIN_TYPE_STUB" if is_train else "COG_PREDICT_TYPE_STUB"
    predictor_ref = os.environ.get(env_name)
    if not predictor_ref:
        # Cog's exact message.
        print(
            f"ERROR: {env_name} environment variable is not set.\n"
            "This should be set automatically by 'cog build'. If running manually,\n"
            f"set it to your predictor reference (e.g. {env_name}=predict.py:Predictor).",
            file=sys.stderr,
        )
        return 1

    try:
        coglet.server.serve(
            predictor_ref=predictor_ref,
            host=args.host,
            port=_port(),
            await_explicit_shutdown=args.await_explicit_shutdown,
            is_train=is_train,
            upload_url=args.upload_url,
        )
    except KeyboardInterrupt:
        # SIGINT already made the server shut down gracefully; Python only noticed it now.
        return 0
    except RuntimeError as e:
        print(f"cog: {e}", file=sys.stderr)
        return 1
    return 0


__all__ = ["Mode", "main"]

if __name__ == "__main__":
    sys.exit(main())
