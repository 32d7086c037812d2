from cog import BasePredictor, Input
from somewhere import get_choices

class Predictor(BasePredictor):
    def predict(self, x: str = Input(choices=get_choices())) -> str:
        return x
