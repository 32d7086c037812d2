"""`BaseRunner` (and its deprecated alias `BasePredictor`) and loading a runner from a ref."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import warnings
from typing import Any

from .types import Path


class BaseRunner:
    """Subclass this, load the model in `setup()` and compute in `run()`:

    class Runner(BaseRunner):
        def setup(self) -> None:
            self.model = load()

        def run(self, prompt: str = Input(description="Text")) -> str:
            return self.model(prompt)
    """

    def setup(self, weights: Path | str | None = None) -> None:
        """Called once before the first prediction. `weights` comes from `COG_WEIGHTS`."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        # A legacy subclass that only defines predict() still works through run().
        if (
            _user_method_owner(type(self), "predict") is not None
            and _user_method_owner(type(self), "run") is None
        ):
            return self.predict(*args, **kwargs)
        raise NotImplementedError("run has not been implemented by parent class.")

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Deprecated: define run() instead."""
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


def _user_method_owner(cls: type, name: str) -> type | None:
    """The first class in the MRO, before BaseRunner, that defines `name` itself."""
    for owner in inspect.getmro(cls):
        if owner in (BaseRunner, BasePredictor, object):
            return None
        if callable(owner.__dict__.get(name)):
            return owner
    return None


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
    module_name = module.__name__
    if explicit_name:
        class_name = explicit_name
    elif hasattr(module, "Runner"):
        if hasattr(module, "Predictor"):
            warnings.warn(
                "Both Runner and Predictor are defined; using Runner. Specify a class "
                "name explicitly if this is not intended.",
                UserWarning,
                stacklevel=2,
            )
        class_name = "Runner"
    elif hasattr(module, "Predictor"):
        warnings.warn(
            "Predictor is deprecated; use Runner instead", DeprecationWarning, stacklevel=2
        )
        class_name = "Predictor"
    else:
        raise AttributeError(f"module {module_name!r} has no Runner or Predictor")

    target = getattr(module, class_name)
    if inspect.isclass(target):
        _validate_runner_class(target, class_name)
        return target()
    return target


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
