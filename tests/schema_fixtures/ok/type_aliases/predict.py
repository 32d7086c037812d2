from typing import Optional, TypeAlias
from cog import BasePredictor, Input

Words = list[str]
MaybeInt: TypeAlias = Optional[int]
type Label = str

class Predictor(BasePredictor):
    def predict(self, words: Words, n: MaybeInt = None, label: Label = "x") -> Words:
        return words
