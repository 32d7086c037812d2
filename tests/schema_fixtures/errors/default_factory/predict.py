from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, x: list[str] = Input(default_factory=list)) -> str:
        return "x"
