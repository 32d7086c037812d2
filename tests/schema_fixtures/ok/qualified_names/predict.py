import typing
import typing as t
import cog


class Predictor(cog.BasePredictor):
    def predict(
        self,
        words: typing.List[str],
        maybe: t.Optional[int] = None,
        image: cog.Path = cog.Input(description="Image"),
        key: cog.Secret = None,
    ) -> typing.Iterator[str]:
        yield "x"
