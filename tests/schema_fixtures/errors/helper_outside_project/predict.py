from cog import BasePredictor, Input
from diffusers_helpers import scheduler_names


class Predictor(BasePredictor):
    def predict(self, scheduler: str = Input(choices=sorted(scheduler_names()))) -> str:
        return scheduler
