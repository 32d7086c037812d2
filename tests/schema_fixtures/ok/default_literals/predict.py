from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(
        self,
        s: str = 'single',
        i: int = -3,
        f: float = 1e-7,
        big: float = 1e21,
        small: float = 0.000001,
        hexa: int = 0x1F,
        under: int = 1_000_000,
        t: bool = True,
        lst: list[float] = [1.0, 2.5, -0.5],
        tup: list[int] = (1, 2),
        d: dict = {"z": None, "a": True, 1: "one"},
        triple: str = """multi""",
    ) -> str:
        return s
