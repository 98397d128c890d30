"""Postroom: a self-hostable email campaign platform."""

__version__ = "0.1.0"
