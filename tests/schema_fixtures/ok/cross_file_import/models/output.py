from cog import BaseModel

class Result(BaseModel):
    label: str
    score: float
