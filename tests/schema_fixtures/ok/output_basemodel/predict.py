from typing import List, Optional
from cog import BaseModel, BasePredictor, Path, Secret

class Output(BaseModel):
    text: str
    score: float
    count: Optional[int]
    tags: List[str]
    file: Path
    secret: Secret
    note: str = "default"

class Predictor(BasePredictor):
    def predict(self, x: str) -> Output:
        return Output(text=x)
