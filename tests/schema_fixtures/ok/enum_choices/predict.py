from enum import Enum


from cog import BasePredictor, Input


class Style(str, Enum):
    PHOTO = "photo"
    ANIME = "anime"
    PAINTING = "oil painting"


class Size(Enum):
    SMALL = 256
    LARGE = 1024




class Predictor(BasePredictor):
    def predict(
        self,
        style: str = Input(
            description="Style of the image",
            choices=[s.value for s in Style],
            default=Style.PHOTO.value,
        ),
        size: int = Input(choices=[s.value for s in Size], default=Size.LARGE.value),
        style_name: str = Input(
            choices=[s.name.lower() for s in Style], default=Style.ANIME.name.lower()
        ),
    ) -> str:
        return style
