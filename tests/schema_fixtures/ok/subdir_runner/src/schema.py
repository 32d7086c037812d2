from cog import BaseModel

class Output(BaseModel):
    y: int
