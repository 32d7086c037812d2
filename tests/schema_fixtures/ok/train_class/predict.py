from cog import BasePredictor, Input, Path

class Predictor(BasePredictor):
    def predict(self, x: str) -> str:
        return x

    def train(self, data: Path, lr: float = Input(default=0.0001)) -> Path:
        return data
