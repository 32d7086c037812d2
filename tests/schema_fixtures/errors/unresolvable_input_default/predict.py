import os
from typing import Optional
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        cache: str = Input(description="Cache dir", default=os.environ.get("CACHE", "/tmp")),
        maybe: Optional[str] = Input(default=os.getcwd()),
    ) -> str:
        return cache
