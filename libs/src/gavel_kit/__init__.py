"""Gavel infrastructure kit: settings, telemetry, logging, gRPC/NATS/DB bootstrap, auth, idempotency."""
