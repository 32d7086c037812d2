from cog import BasePredictor, Input, Path


class Predictor(BasePredictor):
    def predict(
        self,
        image: Path = Input(description="An image", default=None),
        video: Path = Input(description="A video", default=None),
        audio: Path = Input(description="An audio file", default=None),
        seed: int = Input(description="Random seed. Leave blank to randomize the seed", default=None),
        strength: float = Input(description="Strength", ge=0, le=1, default=None),
        tags: list[str] = Input(description="Tags", default=None),
    ) -> str:
        return "ok"
