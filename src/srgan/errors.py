"""One exception type for every mistake a user can make.

The CLI prints a `SrganError` as a single line and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class SrganError(Exception):
    """A problem with the user's input, files or configuration, explained in one line."""


def one_line(exc: BaseException) -> str:
    """A library exception's message folded onto one line (its type name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__
