"""A helper module that builds an `Input(...)` with a default decided when it is imported."""
import importlib.util

from cog import Input

FORMATS = ["webp", "png", "jpg"]


def _best_format():
    # The best format the image's libraries support (here: always webp, found at run time).
    return "webp" if importlib.util.find_spec("json") else "png"


def predict_output_format():
    return Input(description="Format of the output images", choices=FORMATS, default=_best_format())


def required_quality():
    # No default: the input stays required.
    return Input(description="Quality", ge=1, le=100)
