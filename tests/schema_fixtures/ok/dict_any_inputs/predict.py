from typing import Any, Dict
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        config: dict,
        params: Dict[str, Any] = Input(default={"b": 1, "a": [1, 2]}),
        extra: Any = None,
        typed: dict[str, int] = {},
    ) -> dict:
        return config
