from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        text: str,
        count: int = Input(description="N", default=5, ge=1, le=100),
        temperature: float = 0.75,
        verbose: bool = False,
    ) -> str:
        return text
