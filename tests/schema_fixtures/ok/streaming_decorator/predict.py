import cog
from cog import BasePredictor, ConcatenateIterator

class Predictor(BasePredictor):
    @cog.streaming
    def predict(self, prompt: str) -> ConcatenateIterator[str]:
        yield "a"
