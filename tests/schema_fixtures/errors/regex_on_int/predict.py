from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, x: int = Input(regex="^[0-9]+$")) -> str:
        ...
