from typing import Optional, Union
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        a: Optional[str],
        b: str | None = None,
        c: Union[int, None] = Input(default=None, description="c"),
        d: Optional[list[str]] = None,
        e: Optional[float] = Input(default=1.5),
    ) -> str:
        return "x"
