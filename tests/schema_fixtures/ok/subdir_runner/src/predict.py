from cog import BasePredictor
from .schema import Output

class Predictor(BasePredictor):
    def predict(self, x: str) -> Output:
        ...
