from cog import BasePredictor
from transformers import PipelineOutput

class Predictor(BasePredictor):
    def predict(self, x: str) -> PipelineOutput:
        ...
