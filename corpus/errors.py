"""Errors a user can act on. The CLI prints these without a traceback."""


class CorpusError(Exception):
    """Base class: bad input, bad config or a broken invariant, explained in one message."""


class InputError(CorpusError):
    """An input (file, table, dataset directory, parameter) is missing or unreadable."""


class SchemaError(CorpusError):
    """A table lacks a column or has it with the wrong type."""


class ConfigError(CorpusError):
    """A pipeline config or a command-line option is invalid."""


class InvariantError(CorpusError):
    """A stage lost or invented rows: rows in != kept + removed."""
