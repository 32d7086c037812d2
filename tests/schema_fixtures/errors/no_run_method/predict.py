from cog import BaseRunner

class Predictor(BaseRunner):
    def setup(self):
        pass
