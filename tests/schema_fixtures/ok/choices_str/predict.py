from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        scheduler: str = Input(description="Scheduler", choices=["DDIM", "K_EULER", "PNDM"], default="DDIM"),
    ) -> str:
        return scheduler
