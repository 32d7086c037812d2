from cog import BasePredictor

class Predictor(BasePredictor):
    def predict(self, tags: set) -> str:
        return ",".join(tags)
