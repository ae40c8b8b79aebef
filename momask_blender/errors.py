"""The one exception the add-on raises for a user-facing problem."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class MomaskError(Exception):
    """A problem the user can fix (bad input, missing files, an unmappable rig).

    Operators turn it into ``self.report({'ERROR'}, str(err))``; the command line prints it and
    exits with a non-zero status. The message says what is wrong and, where it can, what to do.
    """


@contextmanager
def model_checks() -> Iterator[None]:
    """Run model_core's input checks (`model_core.inputs`: numbers, frame rates, paths to write,
    motion arrays) with their ModelError turned into a MomaskError with the same message."""
    from model_core.errors import ModelError

    try:
        yield
    except ModelError as err:
        raise MomaskError(str(err)) from None
