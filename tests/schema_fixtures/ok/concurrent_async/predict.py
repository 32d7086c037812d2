import cog

class Predictor(cog.BasePredictor):
    @cog.concurrent(max=8)
    async def predict(self, prompt: str) -> str:
        return prompt
