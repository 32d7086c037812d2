from typing import Optional

from cog import BasePredictor, Input, Path

from languages import LANGUAGES, TO_LANGUAGE_CODE
import languages as langs

MODELS = ["tiny", "base", "small", "medium", "large-v3"]


class Predictor(BasePredictor):
    def predict(
        self,
        audio: Path = Input(description="Audio file"),
        model: str = Input(choices=MODELS, default=MODELS[-1], description="Model"),
        language: Optional[str] = Input(
            choices=sorted(LANGUAGES.keys()) + sorted(TO_LANGUAGE_CODE.keys()),
            default=None,
            description="Language spoken in the audio, None for detection",
        ),
        output_language: str = Input(
            choices=sorted(langs.LANGUAGES.values(), reverse=True),
            default="english",
        ),
        temperature: float = Input(default=0, ge=0, le=1),
    ) -> str:
        return ""
