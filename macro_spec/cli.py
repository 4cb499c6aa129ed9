"""Command-line convention shared by every tool of the project.

Bad arguments end with one line on stderr naming the problem and exit status 2: no usage dump,
no traceback, and (since parsing happens first) no partial output.
"""

from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """A bad argument, raised instead of exiting when the tool handles its own errors."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` whose errors are a single line and exit status 2.

    Parameters
    ----------
    raise_errors : bool
        Raise :class:`UsageError` instead of printing and exiting, for tools whose ``main``
        reports every user error in one place.
    """

    def __init__(self, *args, raise_errors: bool = False, **kwargs):
        self.raise_errors = raise_errors
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs):
        """Sub-commands behave like their parent (one line, raising or exiting alike)."""
        action = super().add_subparsers(**kwargs)
        add_parser = action.add_parser

        def add(name, **kw):
            kw.setdefault("raise_errors", self.raise_errors)
            return add_parser(name, **kw)

        action.add_parser = add
        return action

    def error(self, message):  # argparse API
        if self.raise_errors:
            raise UsageError(message)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def redirect_output(log_path: str, append: bool = False) -> None:
    """Send file descriptors 1 and 2 (a simulator child's too) to ``log_path``.

    The process-pool initialiser of the commands that run a co-simulation in a child process
    while they draw progress bars or tables: the build and simulator chatter would garble them.
    ``append`` lets several children share one log.
    """
    import os

    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(log_path, flags, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
