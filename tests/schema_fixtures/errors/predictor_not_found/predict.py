from cog import BasePredictor

class Other(BasePredictor):
    def predict(self) -> str:
        ...
