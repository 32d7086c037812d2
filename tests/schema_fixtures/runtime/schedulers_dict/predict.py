# `choices=list(SCHEDULERS.keys())` over a table the static evaluator cannot compute: its keys
# are the classes' `__name__`s (as real models build it from a diffusion library's imports).
from cog import BasePredictor, Input

import schedulers

SCHEDULERS = {cls.__name__: cls for cls in schedulers.ALL}


class Predictor(BasePredictor):
    def predict(
        self,
        prompt: str = Input(description="Prompt"),
        scheduler: str = Input(
            description="Scheduler",
            choices=list(SCHEDULERS.keys()),
            default="DDIMScheduler",
        ),
        seed: int = Input(description="Random seed. Leave blank to randomize the seed", default=None),
    ) -> str:
        steps = SCHEDULERS[scheduler].steps
        return f"{prompt} with {scheduler} in {steps} steps, seed {seed}"
