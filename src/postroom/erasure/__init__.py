"""Erasing one recipient's address from everything a tenant keeps."""
