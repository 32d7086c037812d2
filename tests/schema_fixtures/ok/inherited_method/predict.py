from cog import BasePredictor, Input

class Base(BasePredictor):
    def predict(self, prompt: str = Input(default="x")) -> str:
        return prompt

class Predictor(Base):
    def setup(self):
        pass
