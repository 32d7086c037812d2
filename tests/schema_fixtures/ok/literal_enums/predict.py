from typing import Literal, Optional
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        mode: Literal["fast", "slow"] = "fast",
        steps: Literal[1, 2, 4] = Input(default=2, description="Steps"),
        style: Optional[Literal["a", "b"]] = None,
    ) -> str:
        return mode
