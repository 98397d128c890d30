"""Retention: recipient CSVs and message personalisation are not kept for ever."""
