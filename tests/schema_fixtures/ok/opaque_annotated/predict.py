from typing import Annotated, Optional
from cog import BasePredictor, Opaque

class Predictor(BasePredictor):
    def predict(
        self,
        payload: Annotated[dict, Opaque],
        rows: Annotated[list, Opaque],
        maybe: Annotated[Optional[dict], Opaque] = None,
        tagged: Annotated[str, "metadata"] = "x",
    ) -> Annotated[list, Opaque]:
        return rows
