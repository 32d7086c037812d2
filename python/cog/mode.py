"""Whether the server runs predictions or trainings."""

from enum import Enum


class Mode(Enum):
    PREDICT = "predict"
    TRAIN = "train"

    def __str__(self) -> str:
        return self.value
