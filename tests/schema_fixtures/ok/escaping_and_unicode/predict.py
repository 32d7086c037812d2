from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        html: str = Input(description="Use <b>bold</b> & \"quotes\"", default="a<b"),
        emoji: str = Input(description="Ünïcödé ✓ – dash", default="ø"),
        long: str = Input(
            description=(
                "First part, "
                "second part."
            ),
            default="",
        ),
    ) -> str:
        return html
