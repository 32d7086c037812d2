from cog import BaseModel, Input, Path

class TrainingOutput(BaseModel):
    weights: Path

def train(data: Path, rank: int = Input(default=16, choices=[8, 16, 32]), scale: float = 1.5) -> TrainingOutput:
    ...
