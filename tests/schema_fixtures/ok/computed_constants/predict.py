from cog import BasePredictor, Input

MAX_SIZE = 2**10
MIN_SIZE = MAX_SIZE // 16
DEFAULT_MODEL = "sdxl"
MODELS = ["sd15", "sd21"]
MODELS.append(DEFAULT_MODEL)
MODELS += ["flux-dev"]
LORA_SCALES = tuple(round(x * 10) for x in range(3))
VERSION = "2"
PROMPT_HELP = f"Prompt for the {DEFAULT_MODEL.upper()} model, version {VERSION}"
NEGATIVE = ", ".join(["blurry", "low quality"])
USE_FP16 = True
PRECISION = "fp16" if USE_FP16 else "fp32"
STEP_CHOICES = list(range(MIN_SIZE // 16, MIN_SIZE + 1, 16))


def default_steps():
    if USE_FP16:
        return 30
    return 50


class Predictor(BasePredictor):
    def predict(
        self,
        prompt: str = Input(description=PROMPT_HELP),
        negative_prompt: str = Input(default=NEGATIVE, description="Things to avoid"),
        model: str = Input(choices=MODELS, default=DEFAULT_MODEL),
        width: int = Input(ge=MIN_SIZE, le=MAX_SIZE, default=MAX_SIZE // 2),
        steps: int = Input(choices=STEP_CHOICES, default=STEP_CHOICES[1]),
        default_steps: int = Input(default=default_steps(), ge=1, le=MAX_SIZE - 24),
        precision: str = Input(default=PRECISION, choices=["fp16", "fp32"]),
        lora_scale: int = Input(default=LORA_SCALES[-1], le=max(LORA_SCALES)),
        title: str = Input(default="a photo".title(), max_length=len(NEGATIVE)),
    ) -> str:
        return prompt
