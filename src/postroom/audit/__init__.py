"""The audit log: who changed what, when and from where, per tenant; append-only."""
