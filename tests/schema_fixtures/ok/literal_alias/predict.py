from typing import Literal

from cog import BasePredictor, Input

Quality = Literal["draft", "final"]
Steps = Literal[1, 2, 4]


class Predictor(BasePredictor):
    def predict(
        self,
        quality: Quality = "draft",
        steps: Steps = Input(default=4, description="Steps"),
    ) -> str:
        return quality
