"""User-facing errors: raised for bad input, reported as one line without a traceback."""


class ConfigError(ValueError):
    """A value given by the user is not allowed; the message names it and what is allowed."""
