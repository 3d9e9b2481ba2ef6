"""tracker: follow kernel fixes from the mailing list to every stable branch."""

__version__ = "0.1.0"
