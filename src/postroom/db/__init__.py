"""Database adapter: engine, the data model, migrations, leases and bulk writes."""
