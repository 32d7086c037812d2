"""The Python half of the worker: what `coglet._impl`'s PredictHandler calls.

Threads (see docs/python-sdk.md):
- The main thread runs setup and every sync prediction: the bridge reports a sync runner as
  `one_at_a_time`, so with COG_MAX_CONCURRENCY > 1 the Rust worker loop queues the predictions
  of every slot and runs them on the main thread in arrival order (a queued one can be
  canceled before it starts). A cancel sends SIGUSR1 to the main thread; the handler raises
  CancelationException there. A signal interrupts blocking calls such as time.sleep, socket
  reads and lock waits (PEP 475 retries them unless the handler raises), and pure-Python
  loops are interrupted between bytecodes. Should a sync prediction ever run on another
  thread, the lock still serializes it and cancel falls back to PyThreadState_SetAsyncExc,
  which only interrupts Python bytecode.
- Async runners share one asyncio loop on a daemon thread, which also takes every prediction
  from the Rust dispatcher (`serve_on_loop`: a wake fd watched with `add_reader`), runs each
  as a task and ends it with `prediction.finish(outcome)`; no other thread is involved. A
  cancel cancels the task (asyncio.CancelledError).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import platform
import signal
import sys
import threading
import time
import traceback
import types
from typing import TYPE_CHECKING, Any

from cog import __version__ as cog_version
from cog.predictor import (
    BasePredictor,
    BaseRunner,
    extract_setup_weights,
    has_setup_weights,
    load_predictor_from_ref,
)

from . import _outputs
from ._impl import CancelationException, _sdk
from ._inputs import InputError, describe_params, prepare

if TYPE_CHECKING:
    import asyncio

# asyncio, concurrent.futures and ctypes are imported where they are used: a sync runner never
# needs them, and they are most of the worker's import time (cold start).

HEALTHCHECK_TIMEOUT_SECONDS = 5.0
CANCEL_SIGNAL = signal.SIGUSR1

Outcome = tuple[Any, ...]


def _error_message(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return f"SystemExit: {e.code}" if e.code is not None else "SystemExit"
    if isinstance(e, KeyboardInterrupt):
        return "KeyboardInterrupt"
    return str(e) or type(e).__name__


def _user_method(instance: Any, names: tuple[str, ...]) -> Any:
    """The first of `names` that the user's class defines (before BaseRunner in the MRO)."""
    for owner in type(instance).__mro__:
        if owner in (BaseRunner, BasePredictor, object):
            break
        for name in names:
            if callable(owner.__dict__.get(name)):
                return getattr(instance, name)
    for name in names:
        fn = getattr(instance, name, None)
        if callable(fn) and getattr(fn, "__func__", None) is not getattr(BaseRunner, name, None):
            return fn
    raise ValueError(f"run or predict method not found: {type(instance).__name__}")


def _is_async_fn(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


class _SyncRun:
    """The sync prediction running now: who runs it and whether a cancel is pending."""

    __slots__ = ("cancel_requested", "id", "thread_id")

    def __init__(self, prediction_id: str, thread_id: int) -> None:
        self.id = prediction_id
        self.thread_id = thread_id
        self.cancel_requested = False


class _AsyncRun:
    __slots__ = ("cancel_requested", "id", "task")

    def __init__(self, prediction_id: str) -> None:
        self.id = prediction_id
        self.task: asyncio.Task[Any] | None = None
        self.cancel_requested = False


class Worker:
    def __init__(self) -> None:
        self.runner: Any = None
        self.fn: Any = None
        self.healthcheck_fn: Any = None
        self.is_async = False
        self._is_async_gen = False
        self.params: list[Any] = []
        self.var_kw = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._main_thread_id = threading.main_thread().ident
        self._sync_lock = threading.Lock()
        self._sync_run: _SyncRun | None = None
        self._async_runs: dict[int, _AsyncRun] = {}

    # ---------------------------------------------------------------- setup

    def setup(
        self, predictor_ref: str, is_train: bool, num_slots: int, weights: str | None
    ) -> dict[str, str]:
        del num_slots
        self._install_streams()
        if threading.current_thread() is threading.main_thread():
            signal.signal(CANCEL_SIGNAL, self._on_cancel_signal)
            # The server decides when to stop (it forwards Shutdown); a Ctrl-C sent to the
            # whole process group must not kill predictions mid-way.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._load(predictor_ref, is_train, weights)
        except BaseException as e:
            traceback.print_exc()
            sys.stderr.flush()
            raise RuntimeError(f"setup failed: {_error_message(e)}") from None
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return {"python_sdk": cog_version, "python": platform.python_version()}

    def _install_streams(self) -> None:
        """Routes `sys.stdout`/`sys.stderr` to the current prediction's logs, for good: from
        here on, a stream that user code assigns in their place is wrapped in a `_TeeWriter`
        (its writes reach both that stream and the logs), as Cog does."""
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if not isinstance(current, _sdk._SlotLogWriter):
                current = _sdk._SlotLogWriter(name, current)
                setattr(sys, name, current)
            _SLOT_WRITERS[name] = current
        if type(sys) is types.ModuleType:
            sys.__class__ = _GuardedSys

    def _load(self, predictor_ref: str, is_train: bool, weights: str | None) -> None:
        target = load_predictor_from_ref(predictor_ref)
        if inspect.isfunction(target) or inspect.ismethod(target) or inspect.isbuiltin(target):
            self.fn = target
        else:
            self.runner = target
            names = ("train",) if is_train else ("run", "predict")
            self.fn = _user_method(target, names)
            hc = getattr(target, "healthcheck", None)
            self.healthcheck_fn = hc if callable(hc) else None
        self.is_async = _is_async_fn(self.fn)
        self._is_async_gen = inspect.isasyncgenfunction(self.fn)
        self.params, self.var_kw = describe_params(self.fn)

        setup = getattr(self.runner, "setup", None) if self.runner is not None else None
        needs_loop = (
            self.is_async
            or (setup is not None and inspect.iscoroutinefunction(setup))
            or (
                self.healthcheck_fn is not None and inspect.iscoroutinefunction(self.healthcheck_fn)
            )
        )
        if needs_loop:
            self._start_loop()
        if setup is not None:
            args: dict[str, Any] = {}
            if has_setup_weights(self.runner):
                args["weights"] = (
                    weights if weights is not None else extract_setup_weights(self.runner)
                )
            result = setup(**args)
            if inspect.isawaitable(result):
                self._await(result)

    def _start_loop(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run_loop() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run_loop, name="coglet-asyncio", daemon=True)
        thread.start()
        ready.wait()
        self.loop = loop
        self._loop_thread = thread

    def _await(self, awaitable: Any, timeout: float | None = None) -> Any:
        assert self.loop is not None

        async def wrap() -> Any:
            return await awaitable

        import asyncio

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout)

    # ---------------------------------------------------------------- predict

    def _prepare(self, pred: Any, input_json: str) -> Any:
        """run()'s arguments (a Coerced, URL inputs not yet downloaded), or an Outcome."""
        try:
            raw = json.loads(input_json)
        except ValueError as e:
            return ("invalid_input", f"input is not valid JSON: {e}")
        if not isinstance(raw, dict):
            return ("invalid_input", "input must be a JSON object")
        try:
            coerced = prepare(self.params, self.var_kw, raw)
        except InputError as e:
            return ("invalid_input", f"Input validation error: {e}")
        if coerced.dropped:
            names = ", ".join(sorted(coerced.dropped))
            pred.write_log("stderr", f"WARNING: ignoring unknown input(s): {names}\n")
        # The downloaded files are not deleted after the run: run() may have returned one of
        # them, and the server reads output files after the prediction returns. The server
        # removes the prediction's directory, downloads included, once the output is final
        # (as Cog keeps input files until the prediction has ended).
        return coerced

    def predict(self, slot: int, pred: Any, input_json: str, output_dir: str) -> Outcome:
        """A sync runner's prediction, on the thread the Rust loop runs it on (the main one)."""
        del slot
        if self.is_async:
            return ("failed", "internal error: async runners are served on the event loop")
        try:
            prepared = self._prepare(pred, input_json)
            if isinstance(prepared, tuple):
                return prepared
            try:
                prepared.download(_download_dir(output_dir))
            except InputError as e:
                return ("invalid_input", f"Input validation error: {e}")
            with self._sync_lock:
                return self._predict_sync(pred, prepared.kwargs, output_dir)
        finally:
            pred.flush_logs()

    def _predict_sync(self, pred: Any, kwargs: dict[str, Any], output_dir: str) -> Outcome:
        token = _sdk._current.set(pred)
        run = _SyncRun(pred.id, threading.get_ident())
        self._sync_run = run
        try:
            result = self.fn(**kwargs)
            if _outputs.is_stream(result):
                for item in result:
                    self._send_item(pred, item, output_dir)
                return ("done", None, True)
            if _outputs.is_async_stream(result):
                raise TypeError("a sync run() cannot return an async iterator")
            return ("done", self._final(result, output_dir), False)
        except CancelationException:
            return ("cancelled",)
        except BaseException as e:
            return self._failed(e)
        finally:
            # First: from here on a late cancel signal is ignored.
            self._sync_run = None
            _sdk._current.reset(token)

    # ------------------------------------------------- async runners: the event loop

    def serve_on_loop(self, queue: Any) -> bool:
        """Called once after setup. An async runner's loop then takes every prediction from
        `queue` (`coglet._impl._PredictionQueue`) itself: no thread per slot, no hand-off."""
        loop = self.loop
        if not self.is_async or loop is None:
            return False
        attached = threading.Event()

        def attach() -> None:
            try:
                loop.add_reader(queue.fileno(), self._start_queued, queue)
            finally:
                attached.set()

        loop.call_soon_threadsafe(attach)
        attached.wait()
        return True

    def _start_queued(self, queue: Any) -> None:
        # One loop callback takes the batch and registers every run, so a cancel (scheduled
        # on the loop by the control thread) always finds the prediction it names.
        for slot, pred, input_json, output_dir in queue.take():
            try:
                self._start_task(slot, pred, input_json, output_dir)
            except BaseException as e:
                pred.finish(self._failed(e))

    def _start_task(self, slot: int, pred: Any, input_json: str, output_dir: str) -> None:
        assert self.loop is not None
        run = _AsyncRun(pred.id)
        self._async_runs[slot] = run
        task = self.loop.create_task(self._run_queued(run, pred, input_json, output_dir))
        run.task = task
        task.add_done_callback(functools.partial(self._task_done, slot, run, pred))

    def _task_done(self, slot: int, run: _AsyncRun, pred: Any, task: asyncio.Task[Any]) -> None:
        import asyncio

        if self._async_runs.get(slot) is run:
            del self._async_runs[slot]
        try:
            outcome = task.result()
        except asyncio.CancelledError:  # canceled before its first step
            outcome = ("cancelled",)
        except BaseException as e:
            outcome = self._failed(e)
        pred.finish(outcome)

    async def _run_queued(
        self, run: _AsyncRun, pred: Any, input_json: str, output_dir: str
    ) -> Outcome:
        try:
            prepared = self._prepare(pred, input_json)
            if isinstance(prepared, tuple):
                return prepared
            if prepared.pending:
                # Downloads block: they must not stall the other slots' predictions.
                assert self.loop is not None
                try:
                    await self.loop.run_in_executor(
                        None, prepared.download, _download_dir(output_dir)
                    )
                except InputError as e:
                    return ("invalid_input", f"Input validation error: {e}")
            return await self._run_async(run, pred, prepared.kwargs, output_dir)
        finally:
            pred.flush_logs()

    async def _run_async(
        self, run: _AsyncRun, pred: Any, kwargs: dict[str, Any], output_dir: str
    ) -> Outcome:
        import asyncio

        # Runs in its own task, hence its own context copy: the ContextVar is per prediction.
        _sdk._current.set(pred)
        if run.cancel_requested:
            return ("cancelled",)
        try:
            if self._is_async_gen:
                result: Any = self.fn(**kwargs)
            else:
                result = self.fn(**kwargs)
                if inspect.isawaitable(result):
                    result = await result
            if _outputs.is_async_stream(result):
                async for item in result:
                    self._send_item(pred, item, output_dir)
                return ("done", None, True)
            if _outputs.is_stream(result):
                for item in result:
                    self._send_item(pred, item, output_dir)
                return ("done", None, True)
            return ("done", self._final(result, output_dir), False)
        except (asyncio.CancelledError, CancelationException):
            return ("cancelled",)
        except BaseException as e:
            return self._failed(e)

    def _send_item(self, pred: Any, item: Any, output_dir: str) -> None:
        encoded = _outputs.encode_item(item, output_dir)
        if encoded[0] == "file":
            pred.output_file(encoded[1], encoded[2] or None)
        else:
            pred.output_json(encoded[1])

    def _final(self, result: Any, output_dir: str) -> tuple[str, ...] | None:
        if result is None:
            return None
        return _outputs.encode_item(result, output_dir)

    def _failed(self, e: BaseException) -> Outcome:
        # The traceback goes to the prediction's logs, as with Cog.
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
        return ("failed", _error_message(e))

    # ---------------------------------------------------------------- cancel

    def cancel(self, slot: int, prediction_id: str) -> None:
        """Called from the control thread; never blocks on the runner."""
        if self.is_async:
            if self.loop is not None:
                # Looked up on the loop: the run is registered there, in the same callback
                # that took it from the queue.
                self.loop.call_soon_threadsafe(self._cancel_task, slot, prediction_id)
            return
        sync = self._sync_run
        if sync is None or sync.id != prediction_id:
            return
        sync.cancel_requested = True
        if sync.thread_id == self._main_thread_id:
            signal.pthread_kill(sync.thread_id, CANCEL_SIGNAL)
        else:
            _raise_in_thread(sync.thread_id, CancelationException)

    def _cancel_task(self, slot: int, prediction_id: str) -> None:
        run = self._async_runs.get(slot)
        if run is None or run.id != prediction_id:
            return  # it has ended meanwhile
        run.cancel_requested = True
        if run.task is not None:
            run.task.cancel()

    def _on_cancel_signal(self, signum: int, frame: Any) -> None:
        del signum, frame
        sync = self._sync_run
        # Only the prediction the cancel named, and only once: a stale signal does nothing.
        if sync is not None and sync.cancel_requested and sync.thread_id == threading.get_ident():
            sync.cancel_requested = False
            raise CancelationException()

    # ---------------------------------------------------------------- health, shutdown

    def healthcheck(self) -> str | None:
        """None when healthy, else why not (Cog's messages). Times out after 5 s."""
        fn = self.healthcheck_fn
        if fn is None:
            return None
        # Python 3.10's concurrent.futures.TimeoutError is not yet the builtin one.
        from concurrent.futures import TimeoutError as FutureTimeout

        deadline = HEALTHCHECK_TIMEOUT_SECONDS
        try:
            if inspect.iscoroutinefunction(fn):
                ok = self._await(fn(), timeout=deadline)
            else:
                ok = _call_with_timeout(fn, deadline)
        except (TimeoutError, FutureTimeout):
            return (
                "Healthcheck failed: user-defined healthcheck timed out after "
                f"{deadline:.1f} seconds"
            )
        except Exception as e:
            return f"Healthcheck failed: {type(e).__name__}: {e}"
        if ok is False:
            return "Healthcheck failed: user-defined healthcheck returned False"
        return None

    def shutdown(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass


# The worker's `_SlotLogWriter` for "stdout" and "stderr" (set by `_install_streams`).
_SLOT_WRITERS: dict[str, Any] = {}


class _GuardedSys(types.ModuleType):
    """The class of the `sys` module in the worker. Assigning `sys.stdout`/`sys.stderr` (user
    code, a logging or progress library, `contextlib.redirect_stdout`) keeps the prediction's
    logs: a foreign stream is wrapped in a `_TeeWriter` around the slot writer. (An audit hook
    cannot do this: CPython raises no audit event for a module attribute assignment.)
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("stdout", "stderr"):
            value = _tee_if_foreign(name, value)
        super().__setattr__(name, value)


def _tee_if_foreign(name: str, value: Any) -> Any:
    writer = _SLOT_WRITERS.get(name)
    if (
        writer is None
        or value is None  # print() to a None stream is a no-op; keep that meaning
        or isinstance(value, (_sdk._SlotLogWriter, _sdk._TeeWriter))
    ):
        return value
    return _sdk._TeeWriter(writer, value, name)


def _download_dir(output_dir: str) -> str:
    """Where a prediction's URL inputs are downloaded: beside its `outputs` directory, inside
    the per-prediction directory that the server deletes when the prediction has ended."""
    return os.path.join(os.path.dirname(os.path.abspath(output_dir)), "inputs")


def _call_with_timeout(fn: Any, timeout: float) -> Any:
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as e:
            error.append(e)

    thread = threading.Thread(target=target, name="coglet-healthcheck-call", daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"healthcheck still running after {time.monotonic() - started:.1f}s")
    if error:
        raise error[0]
    return result[0] if result else None


def _raise_in_thread(thread_id: int, exc: type[BaseException]) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))
