"""Exceptions shared across pycnn.

Both derive from ValueError so code that already catches ValueError for bad input keeps working.
"""


class ModelFileError(ValueError):
    """A model or weights file is not a valid pycnn file, is corrupted or truncated, or does not
    match the model it is loaded into. Every failure while reading a file raises this (never a
    bare struct/JSON/NumPy error)."""


class IntegrityError(ValueError):
    """Downloaded or cached data does not match its recorded checksum."""
