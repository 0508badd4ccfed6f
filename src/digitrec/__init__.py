"""digitrec: draw a digit, get it recognised."""

__version__ = "0.1.0"
