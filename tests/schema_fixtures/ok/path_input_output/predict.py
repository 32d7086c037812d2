from cog import BasePredictor, Input, Path

class Predictor(BasePredictor):
    def predict(self, image: Path = Input(description="Input image"), mask: Path = None) -> Path:
        return image
