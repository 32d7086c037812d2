from cog import BaseModel, Input, Path

class TrainingOutput(BaseModel):
    weights: Path

def train(
    train_data: Path = Input(description="Zip of images"),
    epochs: int = Input(default=10, ge=1),
) -> TrainingOutput:
    ...
