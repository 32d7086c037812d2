from cog import BasePredictor, Input
from .types import Output
from models.output import Result as Detail
from .constants import SIZES

class Predictor(BasePredictor):
    def predict(self, size: str = Input(choices=SIZES, default="s")) -> Output:
        ...
