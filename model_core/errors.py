"""The one exception the model core raises for bad checkpoints and bad input."""


class ModelError(ValueError):
    """A user-facing problem: a missing or broken file, a wrong shape, an invalid argument.

    The message always names what is wrong (the file, the key, the expected and found values),
    so callers can show it as it is.
    """


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an underlying error, to quote inside a ModelError's one-line message."""
    text = str(err).strip().splitlines()
    return text[0][:limit] if text else type(err).__name__
