"""Errors a user can act on. The CLI prints them as one line, without a traceback."""

import re
import unicodedata


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


#: TensorFlow's decoder messages, as a user would say them.
_DECODER_MESSAGES = (
    ("Invalid JPEG data", "corrupt or truncated JPEG data"),
    ("Uncompress failed", "corrupt or truncated JPEG data"),
    ("Input is empty", "empty file"),
    ("Unknown image file format", "not a JPEG, PNG, GIF or BMP image"),
    ("PNG", "corrupt PNG data"),
    ("GIF", "corrupt GIF data"),
    ("BMP", "corrupt BMP data"),
)


def plain_reason(exc: BaseException) -> str:
    """One plain line for a file TensorFlow could not decode: no op names, no node paths."""
    whole = str(getattr(exc, "message", exc))  # a tf.function's first line is "Graph execution error:"
    for marker, plain in _DECODER_MESSAGES:
        if marker in whole:
            return plain
    text = first_line(exc)
    if text.rstrip().endswith("Graph execution error:"):
        text = next((line for line in whole.splitlines()[1:] if line.strip() and "node" not in line), text)
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)
    return text.strip() or type(exc).__name__


#: Unicode categories that break a line or hide in it: controls (a newline), format
#: characters, line and paragraph separators.
CONTROL_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def is_control(char: str) -> bool:
    return unicodedata.category(char) in CONTROL_CATEGORIES


def undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (a file name from a Latin-1 archive:
    Python keeps each such byte as a lone surrogate, which no UTF-8 writer accepts)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escaped(text: str) -> str:
    """``text`` with each byte that was not UTF-8 written as ``\\xNN`` (``caf\\xe9.jpg``)."""
    if not undecodable(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` kept on one line: control characters (a newline in a file name) and bytes
    that were not UTF-8 escaped.

    Everything else, accents and other scripts included, is shown as it is.
    """
    text = escaped(text)
    return "".join(ascii(c)[1:-1] if is_control(c) else c for c in text)


#: What ``--ray`` says when Ray Data is not installed.
RAY_INSTALL_HINT = "--ray needs Ray Data: pip install 'harness[ray]' (or pip install 'ray[data]')"
