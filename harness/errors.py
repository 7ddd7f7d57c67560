"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class HarnessError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (TensorFlow's carry a long op trace)."""
    lines = str(getattr(exc, "message", exc)).strip().splitlines()
    return lines[0] if lines else ""


class WeightsMissingError(HarnessError):
    """ImageNet weights are not in the Keras cache and could not be downloaded."""
