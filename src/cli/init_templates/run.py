# Prediction interface for Cog ⚙️
# https://cog.run/python

import shutil
import tempfile

from cog import BaseRunner, Input, Path


class Runner(BaseRunner):
    def setup(self) -> None:
        """Load the model into memory to make running multiple predictions efficient"""
        # self.model = torch.load("./weights.pth")

    def run(
        self,
        image: Path = Input(description="Grayscale input image"),
        scale: float = Input(description="Factor to scale image by", ge=0, le=10, default=1.5),
    ) -> Path:
        """Run a single prediction on the model"""
        # processed_input = preprocess(image)
        # output = self.model(processed_image, scale)
        # return postprocess(output)
        # Until then, return a copy of the input image.
        output = Path(tempfile.mkdtemp()) / f"output{image.suffix}"
        shutil.copyfile(image, output)
        return output
