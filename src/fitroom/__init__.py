"""fitroom: an open-source virtual fitting room."""

__version__ = "0.1.0"
