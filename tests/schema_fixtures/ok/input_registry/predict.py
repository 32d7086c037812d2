from cog import BasePredictor, Input

class Inputs:
    prompt = Input(description="Prompt", default="hello")

    @staticmethod
    def steps(default=20):
        return Input(description="Steps", ge=1, le=100, default=default)

class Predictor(BasePredictor):
    def predict(self, prompt: str = Inputs.prompt, steps: int = Inputs.steps(50)) -> str:
        return prompt
