# No return annotation on predict (Cog <= 0.16 refused it at build time; the runtime path builds
# it with an untyped output).
from cog import BasePredictor, Input


class Predictor(BasePredictor):
    def predict(self, text: str = Input(description="Text", default="world")):
        return "hello " + text
