from cog import AsyncConcatenateIterator, BaseRunner, concurrent

class Runner(BaseRunner):
    @concurrent(max=4)
    async def run(self, prompt: str) -> AsyncConcatenateIterator[str]:
        yield "a"
