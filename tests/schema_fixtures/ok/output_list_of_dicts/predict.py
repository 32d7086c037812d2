from typing import Dict, List
from cog import BasePredictor

class Predictor(BasePredictor):
    def predict(self, x: str) -> List[Dict[str, str]]:
        ...
