from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, x: int | float = Input(ge=0)) -> str:
        ...
