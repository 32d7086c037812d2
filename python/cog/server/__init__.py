"""`python -m cog.server.http`: the runtime launcher (the server itself is coglet)."""
