"""Errors raised by the Cog SDK."""


class CogError(Exception):
    """Base class for all Cog errors."""


class ConfigDoesNotExist(CogError):
    """No cog.yaml found in the current directory or any parent."""


class PredictorNotSet(CogError):
    """cog.yaml has no `predict` (or `train`) entry."""
