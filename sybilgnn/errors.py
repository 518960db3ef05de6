"""The package's error base: the CLI prints these as one clear message, without a traceback."""

from __future__ import annotations

__all__ = ["SybilgnnError", "InputError"]


class SybilgnnError(Exception):
    """An error whose message says what was wrong and what to do."""

    exit_code = 2


class InputError(SybilgnnError):
    """Bad input data or arguments: the message names the file, row or field."""
