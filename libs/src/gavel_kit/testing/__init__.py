"""Test support shared by every service's tests: real nats-server, databases, free ports."""
