"""Recipient files: reading an uploaded CSV into checked recipients, one row at a time."""
