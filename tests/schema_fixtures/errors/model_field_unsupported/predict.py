from cog import BaseModel, BasePredictor

class Output(BaseModel):
    pair: set[int]

class Predictor(BasePredictor):
    def predict(self) -> Output:
        ...
