"""Test support: a live server, a recording SMTP relay and an API client."""
