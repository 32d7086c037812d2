from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, x: str = Input(max_length=3, default="abcdef")) -> str:
        ...
