"""One exception type for every mistake a user can make.

The CLI prints a `SrganError` as a single line and exits non-zero (`--verbose` adds the chain of
causes: every `SrganError` made from a library's exception is raised `from` it); anything else is a
bug and keeps its traceback.

A wrong value is what Python calls a `ValueError`, so `SrganError` is one: code that catches
`ValueError` around srgan catches srgan's refusals too. A value of the wrong type is a
`SrganTypeError`, which is also a `TypeError`.
"""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class SrganError(ValueError):
    """A problem with the user's input, files or configuration, explained in one line."""


class SrganTypeError(SrganError, TypeError):
    """A value of the wrong type (text where a number belongs, a list where a mapping does)."""


def one_line(exc: BaseException) -> str:
    """A library exception's message folded onto one line (its type name if it has none), without
    terminal colour codes."""
    text = " ".join(_ANSI.sub("", str(exc)).split())
    return text or type(exc).__name__
