from cog import BaseRunner

class Predictor(BaseRunner):
    def run(self) -> str:
        ...

    def predict(self) -> str:
        ...
