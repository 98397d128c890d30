"""Campaigns and their messages: the life cycle every status change goes through."""
