from __future__ import annotations

from typing import Optional

from cog import BasePredictor, BaseModel, Input, Path


class Output(BaseModel):
    image: Path
    caption: Optional[str]


class Predictor(BasePredictor):
    def predict(
        self,
        prompt: "str",
        count: "int" = Input(default=1),
        image: Optional[Path] = None,
    ) -> "Output":
        ...
