from cog import BaseRunner, concurrent


class Runner(BaseRunner):
    @concurrent(max=8)
    async def run(self, text: str = "") -> str:
        return text
