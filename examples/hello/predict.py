from cog import BasePredictor, Input


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.prefix = "hello"

    def predict(self, text: str = Input(description="Who to greet", default="world")) -> str:
        return f"{self.prefix} {text}"
