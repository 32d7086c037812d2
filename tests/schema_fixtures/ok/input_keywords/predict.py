from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        prompt: str = Input(description="Prompt", min_length=1, max_length=500, regex="^[a-z ]+$", default="a cat"),
        guidance: float = Input(ge=0.0, le=20.5, default=7.5),
        old: str = Input(default="x", deprecated=True, description="Deprecated input"),
        seed: int = Input(ge=-1, le=4294967295, default=-1),
    ) -> str:
        return prompt
