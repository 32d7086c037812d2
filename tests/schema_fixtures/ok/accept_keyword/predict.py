from cog import BasePredictor, Input, Path

class Predictor(BasePredictor):
    def predict(
        self,
        image: Path = Input(description="Image", accept="image/*"),
        audio: list[Path] = Input(accept=".wav,.mp3", default=None),
    ) -> Path:
        return image
