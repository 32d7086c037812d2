from typing import Optional
from cog import BasePredictor

class Predictor(BasePredictor):
    def predict(self, x: str) -> Optional[str]:
        return x
