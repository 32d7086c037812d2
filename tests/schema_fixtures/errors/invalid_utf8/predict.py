from cog import BasePredictor
# café ÿş
class Predictor(BasePredictor):
    def predict(self) -> str:
        return "x"
