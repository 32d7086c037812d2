# A default computed by a helper function of another module (the whole `Input(...)`).
from cog import BasePredictor, Input

import optimise_images


class Predictor(BasePredictor):
    def predict(
        self,
        width: int = Input(description="Width", ge=1, le=4096, default=512),
        output_format: str = optimise_images.predict_output_format(),
        quality: int = optimise_images.required_quality(),
    ) -> str:
        return f"{width}px as {output_format} at {quality}"
