"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class HarnessError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class WeightsMissingError(HarnessError):
    """ImageNet weights are not in the Keras cache and could not be downloaded."""
