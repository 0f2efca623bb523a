"""`gavel bench`: load, latency, durability and failover figures of a running Gavel cluster."""
