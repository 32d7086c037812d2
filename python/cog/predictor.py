"""`BaseRunner` (and its deprecated alias `BasePredictor`) and loading a runner from a ref."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import warnings
from typing import Any

from .types import Path


def _user_method_owner(cls: type, name: str) -> type | None:
    """The first class in the MRO, before the framework's classes, that defines `name` itself."""
    for owner in inspect.getmro(cls):
        if owner.__dict__.get("_cog_framework_class") or owner is object:
            return None
        if callable(owner.__dict__.get(name)):
            return owner
    return None


class BaseRunner:
    """Subclass this, load the model in `setup()` and compute in `run()`:

    class Runner(BaseRunner):
        def setup(self) -> None:
            self.model = load()

        def run(self, prompt: str = Input(description="Text")) -> str:
            return self.model(prompt)
    """

    # Marks the framework's own classes: the MRO search for user methods stops at them.
    _cog_framework_class = True

    # Which class in the MRO (before BaseRunner) defines run() / predict(); None when only
    # the framework does. Computed once per subclass.
    _run_owner: type | None = None
    _predict_owner: type | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._run_owner = _user_method_owner(cls, "run")
        cls._predict_owner = _user_method_owner(cls, "predict")

    def setup(self, weights: Path | str | None = None) -> None:
        """Called once before the first prediction. `weights` comes from `COG_WEIGHTS`."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        # A legacy subclass that only defines predict() still works through run().
        cls = type(self)
        if cls._predict_owner is not None and cls._run_owner is None:
            return self.predict(*args, **kwargs)
        raise NotImplementedError("run has not been implemented by parent class.")

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Deprecated bridge to run(): define run() instead."""
        warnings.warn(
            f"{type(self).__name__}.predict() is deprecated; use run() instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.run(*args, **kwargs)

    @property
    def scope(self) -> Any:
        """The current prediction's scope (metrics, context); a no-op scope outside one."""
        from . import current_scope

        return current_scope()

    def record_metric(self, key: str, value: Any, mode: str = "replace") -> None:
        """Record a metric on the current prediction (`mode`: replace, incr or append)."""
        self.scope.record_metric(key, value, mode=mode)


class BasePredictor(BaseRunner):
    """Deprecated alias of BaseRunner."""

    _cog_framework_class = True


def _validate_runner_class(cls: type, class_name: str) -> None:
    defines_run = _user_method_owner(cls, "run") is not None
    defines_predict = _user_method_owner(cls, "predict") is not None
    if defines_run and defines_predict:
        raise ValueError(f"{class_name} must define either run() or predict(), not both")
    if not defines_run and not defines_predict:
        raise ValueError(f"run or predict method not found: {class_name}")
    if defines_predict:
        warnings.warn(
            f"{class_name}.predict() is deprecated; use run() instead",
            DeprecationWarning,
            stacklevel=3,
        )
    if BasePredictor in inspect.getmro(cls)[1:]:
        warnings.warn(
            "BasePredictor is deprecated; use BaseRunner instead",
            DeprecationWarning,
            stacklevel=3,
        )


def _load_module(module_path: str) -> Any:
    module_name = os.path.basename(module_path)
    if module_name.endswith(".py"):
        module_name = module_name[: -len(".py")]
    spec = importlib.util.spec_from_file_location(module_name, module_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot load module from {module_path}")
    module = importlib.util.module_from_spec(spec)
    # Registered under its basename so that pickle and `from predict import X` find it.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError as e:
        del sys.modules[module_name]
        raise FileNotFoundError(f"Cannot load module from {module_path}: {e.strerror}") from e
    return module


def load_predictor_from_ref(ref: str) -> Any:
    """Load `path/to/file.py:Name` (Name defaults to Runner, then Predictor).

    A class is validated and instantiated; a function is returned as is.
    """
    module_path, _, explicit_name = ref.partition(":")
    module = _load_module(module_path)
    class_name = explicit_name or _default_class_name(module)
    target = getattr(module, class_name)
    if inspect.isclass(target):
        _validate_runner_class(target, class_name)
        return target()
    return target


def _default_class_name(module: Any) -> str:
    """`Runner` when it is usable, else the legacy `Predictor`; else why neither works.

    A `Runner` that is not a valid runner (`Runner = 42`, or a class without run()) does not
    shadow a `Predictor` in the same module: Cog falls back to it.
    """
    runner = getattr(module, "Runner", None)
    problem: Exception | None = None
    if inspect.isclass(runner):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                _validate_runner_class(runner, "Runner")
        except ValueError as e:
            problem = e
    elif runner is not None and not callable(runner):
        problem = TypeError("Runner exists but is not a class or callable")
    if runner is not None and problem is None:
        if hasattr(module, "Predictor"):
            warnings.warn(
                "Both Runner and Predictor are defined; using Runner. Specify a class "
                "name explicitly if this is not intended.",
                UserWarning,
                stacklevel=3,
            )
        return "Runner"
    if hasattr(module, "Predictor"):
        warnings.warn(
            "Predictor is deprecated; use Runner instead", DeprecationWarning, stacklevel=3
        )
        return "Predictor"
    if problem is not None:
        raise problem
    raise AttributeError(f"module {module.__name__!r} has no Runner or Predictor")


def has_setup_weights(predictor: Any) -> bool:
    """Whether the runner's setup() takes a `weights` parameter."""
    setup = getattr(predictor, "setup", None)
    if setup is None:
        return False
    try:
        return "weights" in inspect.signature(setup).parameters
    except (TypeError, ValueError):
        return False


def extract_setup_weights(predictor: Any) -> str | None:
    """The weights to pass to setup(): `COG_WEIGHTS`, else None."""
    del predictor
    return os.environ.get("COG_WEIGHTS") or None
