from cog import BasePredictor

class Predictor(BasePredictor):
    def predict(self, a: str, /, b: int = 1, *args: str, c: bool = False, **kwargs: int) -> str:
        return a
