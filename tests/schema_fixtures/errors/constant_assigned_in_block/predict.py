import torch
from cog import BasePredictor, Input

if torch.cuda.is_available():
    PRECISIONS = ["fp16", "bf16"]
else:
    PRECISIONS = ["fp32"]


class Predictor(BasePredictor):
    def predict(self, precision: str = Input(choices=PRECISIONS)) -> str:
        return precision
