"""Errors a user can act on. The CLI prints them as one line, without a traceback."""


class HarnessError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (TensorFlow's carry a long op trace)."""
    lines = str(getattr(exc, "message", exc)).strip().splitlines()
    return lines[0] if lines else ""


class WeightsMissingError(HarnessError):
    """ImageNet weights are not in the Keras cache and could not be downloaded."""


def one_line(exc: BaseException) -> str:
    """One line for a user: our own errors as they are, others with their type."""
    text = first_line(exc)
    if isinstance(exc, HarnessError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
