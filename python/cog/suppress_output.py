"""`suppress_output()`: silence fds 1 and 2 (subprocesses and C libraries included)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def suppress_output() -> Iterator[None]:
    """Within the block, whatever is written to file descriptors 1 and 2 goes to /dev/null.

    Works at the descriptor level, so output of C extensions and child processes is dropped
    too; Python-level `sys.stdout`/`sys.stderr` objects are left in place.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)
