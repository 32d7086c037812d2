import time

from cog import BaseRunner


class Runner(BaseRunner):
    def run(self, seconds: float = 3.0) -> str:
        time.sleep(seconds)
        return "done"
