from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def setup(self):
        self.x = 1

    def predict(
        self,
        text: str = Input(description="Text", default="hi"),
        n: int = Input(ge=1, le=3, default=2),
    ) -> str:
        return text * n
