from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, width: int = Input(choices=[256, 512, 768], default=512), height: int = Input(choices=[256, 512])) -> int:
        return width
