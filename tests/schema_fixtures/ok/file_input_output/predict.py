from cog import BasePredictor, File

class Predictor(BasePredictor):
    def predict(self, data: File) -> File:
        return data
