from typing import TypedDict
from cog import BasePredictor

class Options(TypedDict):
    size: int
    name: str

class Predictor(BasePredictor):
    def predict(self, options: Options) -> str:
        return "x"
