from typing import NotRequired, Required, TypedDict
from cog import BasePredictor

class Partial(TypedDict, total=False):
    a: int
    b: Required[str]

class Full(TypedDict):
    name: str
    extra: NotRequired[float]
    inner: Partial

class Predictor(BasePredictor):
    def predict(self, x: str) -> Full:
        ...
