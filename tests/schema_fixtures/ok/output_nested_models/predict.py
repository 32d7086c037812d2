from typing import Optional
from cog import BaseModel, BasePredictor

class Box(BaseModel):
    x: int
    y: int

class Detection(BaseModel):
    label: str
    box: Box
    boxes: list[Box]
    parent: Optional["Detection"]

class Predictor(BasePredictor):
    def predict(self, x: str) -> list[Detection]:
        ...
