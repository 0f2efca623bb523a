"""The catalog's pure model: products, sales, lots, registrations, reservations, seats, the schedule.

Nothing here reads a clock, draws randomness or does I/O: ids, seeds and `now` come in as
arguments, so every rule can be unit tested and replayed. Time zones are resolved with the
standard library's `zoneinfo` (a read-only lookup of the IANA database, deterministic per tzdata
version) — the sale's IANA zone decides a lot's local date, part of day and 10-minute slot.
"""
