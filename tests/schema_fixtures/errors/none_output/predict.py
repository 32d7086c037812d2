from cog import BasePredictor

class Predictor(BasePredictor):
    def predict(self, x: str) -> None:
        print(x)
