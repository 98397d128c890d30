"""The ingest pipeline: a campaign's CSV becomes message rows."""
