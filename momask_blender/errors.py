"""The one exception the add-on raises for a user-facing problem."""


class MomaskError(Exception):
    """A problem the user can fix (bad input, missing files, an unmappable rig).

    Operators turn it into ``self.report({'ERROR'}, str(err))``; the command line prints it and
    exits with a non-zero status. The message says what is wrong and, where it can, what to do.
    """
