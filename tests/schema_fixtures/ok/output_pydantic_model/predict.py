from pydantic import BaseModel
from cog import BasePredictor

class Result(BaseModel):
    label: str
    confidence: float

class Predictor(BasePredictor):
    def predict(self, x: str) -> Result:
        ...
