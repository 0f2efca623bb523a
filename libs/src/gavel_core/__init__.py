"""Gavel's pure shared core: value objects and errors every domain may use.

Nothing here does I/O, reads a clock or draws randomness (import-linter enforces it),
so domain packages can depend on it without losing determinism.
"""
