from cog import Input, Path

def predict(image: Path, scale: float = Input(default=2.0, ge=1, le=10)) -> Path:
    return image
