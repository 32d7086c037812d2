#!/usr/bin/env python3
"""Writes the runtime reference of predictor fixtures: what upstream Cog's SDK (the `cog`
package from PyPI, 0.23.x) reads from a predictor by importing it.

Usage: python scripts/schema_reference.py FIXTURE_DIR...

Each FIXTURE_DIR holds a cog.yaml (`predict:`/`run:`) and the predictor. The script imports the
predictor with `cog._inspector.create_predictor` (Python runs it, as Cog did up to 0.16) and
writes FIXTURE_DIR/reference.json: every input's order, JSON type, default, description,
constraints and choices, and the output's JSON schema. tests/schema.rs compares the static
schema with it. Needs the `cog` package: `pip install cog==0.23.1` in a virtual environment.
"""

import importlib.metadata
import json
import os
import sys
import warnings

import yaml
from cog import _inspector


def reference(fixture: str) -> dict:
    with open(os.path.join(fixture, "cog.yaml")) as f:
        config = yaml.safe_load(f)
    ref = config.get("run") or config.get("predict")
    file, name = ref.split(":")
    module = file[:-3].replace("/", ".")
    sys.path.insert(0, os.path.abspath(fixture))
    try:
        for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
            del sys.modules[loaded]
        info = _inspector.create_predictor(module, name)
    finally:
        sys.path.pop(0)
        root = os.path.abspath(fixture)
        for local in [
            m
            for m, v in list(sys.modules.items())
            if getattr(v, "__file__", None) and os.path.abspath(v.__file__).startswith(root)
        ]:
            del sys.modules[local]
    inputs = {}
    for field_name, field in info.inputs.items():
        default = field.default
        if default is not None and not hasattr(default, "default_factory"):
            default = field.type.json_encode(default)
        inputs[field_name] = {
            "order": field.order,
            "type": field.type.json_type(),
            "default": default,
            "description": field.description,
            "ge": field.ge,
            "le": field.le,
            "min_length": field.min_length,
            "max_length": field.max_length,
            "regex": field.regex,
            "choices": field.choices,
            "deprecated": field.deprecated,
        }
    return {
        "cog_version": importlib.metadata.version("cog"),
        "inputs": inputs,
        "output": info.output.json_type(),
    }


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    failed = 0
    for fixture in sys.argv[1:]:
        try:
            out = reference(fixture)
        except Exception as e:
            print(f"{fixture}: no reference: {e}", file=sys.stderr)
            failed += 1
            continue
        try:
            text = json.dumps(out, indent=2, sort_keys=True)
        except TypeError:  # a dict default with keys of mixed types
            text = json.dumps(out, indent=2)
        path = os.path.join(fixture, "reference.json")
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(path + ".tmp", path)
        print(f"{fixture}: {len(out['inputs'])} inputs")
    if failed:
        print(f"{failed} fixture(s) without a reference", file=sys.stderr)


if __name__ == "__main__":
    main()
