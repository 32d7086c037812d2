from cog import BasePredictor, Path

class Predictor(BasePredictor):
    def predict(self, x: Path | str) -> str:
        ...
