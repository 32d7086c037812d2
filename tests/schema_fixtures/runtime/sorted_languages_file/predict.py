# `choices=sorted(LANGUAGES.keys())` over a table read from a file when the module is imported.
import json
from pathlib import Path

from cog import BasePredictor, Input

LANGUAGES = json.loads((Path(__file__).parent / "languages.json").read_text())


class Predictor(BasePredictor):
    def predict(
        self,
        text: str = Input(description="Text to translate"),
        language: str = Input(
            description="Target language", choices=sorted(LANGUAGES.keys()), default="en"
        ),
    ) -> str:
        return f"{LANGUAGES[language]}: {text}"
