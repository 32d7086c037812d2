from typing import List
from cog import BasePredictor, Input, Path

class Predictor(BasePredictor):
    def predict(
        self,
        words: list[str],
        numbers: List[int] = Input(default=[1, 2, 3]),
        images: list[Path] = Input(description="Some images"),
        flags: list[bool] = None,
    ) -> list[str]:
        return words
