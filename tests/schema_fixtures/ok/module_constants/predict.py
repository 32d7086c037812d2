from cog import BasePredictor, Input

DEFAULT_PROMPT = "a photo of an astronaut"
MIN_STEPS = 1
MAX_STEPS = 500
STEPS = 50
DESCRIPTION = "Number of denoising steps"

class Predictor(BasePredictor):
    def predict(
        self,
        prompt: str = DEFAULT_PROMPT,
        steps: int = Input(description=DESCRIPTION, ge=MIN_STEPS, le=MAX_STEPS, default=STEPS),
    ) -> str:
        return prompt
