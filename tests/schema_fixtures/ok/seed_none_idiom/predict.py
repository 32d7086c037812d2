from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        seed: int = Input(description="Random seed. Leave blank to randomize the seed", default=None),
        prompt: str = None,
    ) -> str:
        return f"{seed!r} {prompt!r}"
