"""The worker: file processing, scheduling and sending, in one asyncio loop."""
