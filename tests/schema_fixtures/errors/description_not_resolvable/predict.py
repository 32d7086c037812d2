import os
from cog import BasePredictor, Input


class Predictor(BasePredictor):
    def predict(
        self,
        steps: int = Input(description=os.environ["STEPS_HELP"], ge=1, le=50, default=20),
    ) -> str:
        return str(steps)
