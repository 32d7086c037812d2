from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, x: str = Input(accept="image/*")) -> str:
        ...
