class FracdataError(Exception):
    """A user-facing error: the CLI prints `error: <message>` on one line and exits 2.

    Messages name the file and the reason (and, where there is one, the fix).
    """
