from cog import BasePredictor, Input, Path

class Predictor(BasePredictor):
    def predict(self, prompt: str, mode: str = Input(choices=["a", "b"], default="a")) -> str:
        return prompt
