from cog import BasePredictor, Input, Path


class DDIMScheduler:
    pass


class EulerScheduler:
    pass


class DPMSolverScheduler:
    pass


SCHEDULERS = {
    "DDIM": DDIMScheduler,
    "K_EULER": EulerScheduler,
    "DPMSolverMultistep": DPMSolverScheduler,
}
SCHEDULERS["K_EULER_ANCESTRAL"] = EulerScheduler

SIZES = [512 + 128 * i for i in range(5)]


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.pipes = {name: cls() for name, cls in SCHEDULERS.items()}

    def predict(
        self,
        prompt: str = Input(description="Input prompt"),
        scheduler: str = Input(
            description="Scheduler",
            choices=list(SCHEDULERS.keys()),
            default=list(SCHEDULERS)[0],
        ),
        width: int = Input(description="Width", choices=SIZES, default=SIZES[-1]),
        num_outputs: int = Input(
            description="Number of images", ge=1, le=len(SCHEDULERS), default=1
        ),
    ) -> list[Path]:
        return []
