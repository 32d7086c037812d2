"""Mirror an image, scale it to a width, and return it as lossless WebP.

Pillow does the image work; the WebP encoding is done by `cwebp`, from the Debian package
`webp` (cog.yaml's `system_packages`), to show a system package used at run time.
"""

import shutil
import subprocess
import tempfile

from cog import BaseRunner, Input, Path
from PIL import Image, ImageOps


class Runner(BaseRunner):
    def setup(self) -> None:
        cwebp = shutil.which("cwebp")
        if cwebp is None:
            raise RuntimeError("cwebp not found: is the `webp` system package installed?")
        self.cwebp = cwebp

    def run(
        self,
        image: Path = Input(description="Image to transform (any format Pillow reads)"),
        width: int = Input(description="Width of the result in pixels", default=64, ge=1, le=4096),
        mirror: bool = Input(description="Flip the image left to right", default=True),
    ) -> Path:
        with Image.open(image) as img:
            img = img.convert("RGB")
            if mirror:
                img = ImageOps.mirror(img)
            height = max(1, round(img.height * width / img.width))
            img = img.resize((width, height), Image.Resampling.NEAREST)
        workdir = Path(tempfile.mkdtemp())
        png = workdir / "scaled.png"
        img.save(png)
        out = workdir / "output.webp"
        subprocess.run(
            [self.cwebp, "-quiet", "-lossless", "-exact", str(png), "-o", str(out)],
            check=True,
        )
        return out
