"""Campaign and tenant analytics, read from rollups kept with the events (see rollups)."""
