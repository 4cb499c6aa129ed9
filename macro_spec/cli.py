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
