from typing import AsyncIterator
from cog import BasePredictor, Path

class Predictor(BasePredictor):
    async def predict(self, n: int) -> AsyncIterator[Path]:
        yield Path("x")
