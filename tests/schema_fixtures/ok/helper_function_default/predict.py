from cog import BasePredictor, Input, Path

from cog_utils import optimise_images
from cog_utils.optimise_images import default_aspect_ratio

ASPECT_RATIOS = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
}


class Inputs:
    prompt = Input(description="Prompt for generated image")
    aspect_ratio = Input(
        description="Aspect ratio for the generated image",
        choices=list(ASPECT_RATIOS.keys()),
        default=default_aspect_ratio(),
    )

    @staticmethod
    def steps(default: int = 28, maximum: int = 50):
        return Input(description="Number of denoising steps", ge=1, le=maximum, default=default)


class Predictor(BasePredictor):
    def predict(
        self,
        prompt: str = Inputs.prompt,
        aspect_ratio: str = Inputs.aspect_ratio,
        num_inference_steps: int = Inputs.steps(maximum=4, default=4),
        output_format: str = optimise_images.predict_output_format(),
        output_quality: int = optimise_images.predict_output_quality(),
        lossless_quality: int = optimise_images.predict_output_quality(default=100),
    ) -> Path:
        return Path("out.webp")
