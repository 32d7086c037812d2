from typing import Optional
from cog import BaseModel, Path
from models.output import Result

class Output(BaseModel):
    image: Path
    detail: Optional[Result]
