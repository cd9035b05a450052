"""User-facing errors.

Every failure a user can cause (bad data, a bad spec, a bad flag, a missing key) is raised as a
subclass of ``ResearchError`` whose message says what was wrong and what to do. The CLI prints the
message without a traceback; Dagster assets turn it into a ``dg.Failure`` with the same text.
"""


class ResearchError(Exception):
    """Base class for errors whose message is meant for the user, not a developer."""


class DataError(ResearchError):
    """Market data is missing, malformed or inconsistent (names the file, row and problem)."""


class SpecError(ResearchError):
    """A strategy spec does not validate (names the field)."""


class ConfigError(ResearchError):
    """An environment variable or setting has a bad value (names the variable)."""


class TrainingError(ResearchError):
    """Training could not run on the given spec and data (e.g. too few samples after the split)."""
