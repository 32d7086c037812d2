from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, n: int = Input(3, description="positional default")) -> int:
        return n
