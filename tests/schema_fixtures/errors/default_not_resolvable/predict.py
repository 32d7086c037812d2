import os
from cog import BasePredictor

class Predictor(BasePredictor):
    def predict(self, x: str = os.getcwd()) -> str:
        return x
