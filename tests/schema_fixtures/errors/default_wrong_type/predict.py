from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, x: int = Input(default="three")) -> str:
        ...
