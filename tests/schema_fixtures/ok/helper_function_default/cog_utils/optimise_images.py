from cog import Input

IMAGE_FORMATS = ["webp", "jpg", "png"]


def predict_output_format():
    return Input(
        description="Format of the output images",
        choices=IMAGE_FORMATS,
        default="webp",
    )


def predict_output_quality(default=80):
    return Input(
        description="Quality when saving the output images, from 0 to 100. Not relevant for .png outputs",
        default=default,
        ge=0,
        le=100,
    )


def default_aspect_ratio():
    return "1:1"
