import schemas
import helpers.defaults as defaults
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, steps: int = Input(default=defaults.STEPS)) -> schemas.Output:
        ...
