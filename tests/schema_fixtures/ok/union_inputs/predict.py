from typing import Any, Union
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        value: str | int,
        number: Union[int, float] = 3,
        maybe: int | float | None = None,
        items: list[str] | str = Input(default="x", description="One or many"),
        blob: dict | list[int] = None,
        required_nullable: str | int | None = Input(description="Required but nullable"),
    ) -> str:
        return "x"
