"""Echo a prompt back one word at a time, as an async stream of tokens."""

import asyncio

from cog import AsyncConcatenateIterator, BaseRunner, Input, concurrent


class Runner(BaseRunner):
    @concurrent(max=4)
    async def run(
        self,
        prompt: str = Input(description="Text to stream back, word by word"),
        delay: float = Input(
            description="Seconds to wait before each word", default=0.05, ge=0, le=5
        ),
    ) -> AsyncConcatenateIterator[str]:
        for i, word in enumerate(prompt.split(" ")):
            await asyncio.sleep(delay)
            yield word if i == 0 else " " + word
