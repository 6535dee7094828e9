"""fitroom's errors: one base, and the exit status each kind gives on the command line.

Every error fitroom raises on purpose derives from :class:`FitroomError` and carries a message written for the
person who can fix it (the shopper, the shop's developer or the ML engineer). The command line prints that message as
one line and exits with the class's :attr:`FitroomError.exit_code`:

======  ===========================================================================
 code    meaning
======  ===========================================================================
 0       success (warnings included)
 1       warnings, under ``--strict``
 2       bad input: a file that cannot be read, a refused photo, a broken dataset
 3       missing weights or configuration: a file to download, a setting to give
 4       internal error (a bug: run again with ``-v`` for the traceback and report it)
======  ===========================================================================

The classes also derive from the built-in exception a caller would catch without knowing fitroom
(``ValueError`` for bad input, ``FileNotFoundError`` for a missing weight file), so code written against those
keeps working.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_WARNINGS = 1
EXIT_BAD_INPUT = 2
EXIT_SETUP = 3
EXIT_INTERNAL = 4


class FitroomError(Exception):
    """Base of every error fitroom raises on purpose; ``str(error)`` is one sentence for the person who can fix it."""

    exit_code: int = EXIT_INTERNAL


class InputError(FitroomError, ValueError):
    """Bad input: a photo, dataset, file or argument that cannot be used as given (exit status 2)."""

    exit_code = EXIT_BAD_INPUT


class SetupError(FitroomError):
    """Something the installation lacks: weights, a model folder, a setting (exit status 3)."""

    exit_code = EXIT_SETUP


class ConfigurationError(SetupError, ValueError):
    """A setting or configuration value is missing or invalid (exit status 3)."""


class MissingWeightsError(SetupError, FileNotFoundError):
    """A weight file or model folder is missing; the message names the file and how to get it (exit status 3)."""


def exit_code(error: BaseException) -> int:
    """The command-line exit status for ``error``: its class's code, 2 for other ``ValueError``/``OSError`` (a
    path or value the user gave), 4 for anything else (a bug)."""
    if isinstance(error, FitroomError):
        return error.exit_code
    if isinstance(error, (ValueError, OSError)):
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL
