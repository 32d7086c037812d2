from cog import BaseModel

class Output(BaseModel):
    text: str
