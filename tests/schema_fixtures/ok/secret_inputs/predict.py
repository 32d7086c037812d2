from typing import Optional
from cog import BasePredictor, Input, Secret

class Predictor(BasePredictor):
    def predict(
        self,
        token: Secret,
        api_key: Secret = Input(default=None, description="Falls back to the proxy key"),
        other: Optional[Secret] = None,
    ) -> str:
        return "ok"
