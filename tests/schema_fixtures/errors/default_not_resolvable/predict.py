import os
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, x: str = Input(default=os.getcwd())) -> str:
        return x
