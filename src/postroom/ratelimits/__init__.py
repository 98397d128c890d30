"""Rate limits shared by every process: the bucket arithmetic and the buckets in the database,
used by the sender's rate gate, the API's per-key request rate and the console's sign-in."""
