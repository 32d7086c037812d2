from cog import BasePredictor, Input

SIZES = ["small", "medium"]
MORE = ["large"]
MODELS = {"sd15": "runwayml/sd", "sdxl": "stabilityai/sdxl"}

class Predictor(BasePredictor):
    def predict(
        self,
        size: str = Input(choices=SIZES + MORE, default="small"),
        model: str = Input(choices=list(MODELS.keys()), default="sdxl"),
        repo: str = Input(choices=list(MODELS.values())),
        plain: str = Input(choices=SIZES),
    ) -> str:
        return size
