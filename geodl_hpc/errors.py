"""One error base class for everything a user can cause; messages say what is wrong and what to do."""

from __future__ import annotations


class GeodlError(Exception):
    """Base class of every user-facing error: the CLI prints it as one line and exits non-zero."""

    exit_code = 2


class ConfigError(GeodlError):
    """A config file, key path or override is wrong (names the key path)."""


class InputDataError(GeodlError):
    """An input file is missing, unreadable or unsuitable (names the file and what to do)."""


class ArchiveError(GeodlError):
    """An archive is missing, incomplete, or of the wrong kind (names the archive)."""


class MissingDependencyError(GeodlError):
    """An optional engine (ray, horovod, torch, obspy, ...) is needed but not installed."""
