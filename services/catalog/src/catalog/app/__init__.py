"""The catalog's use cases: one async function per command or query.

Every use case takes the open unit of work first, then the caller (`gavel_core.auth.Principal`)
and a command dataclass or an id, and keyword-only the ports it needs (`ids`, `deposits`) and
`now`. It checks the caller's role and ownership itself (the gRPC access option is the first
gate, not the only one), validates its input with dotted field paths of the proto request, and
reports changes as domain events through `uow.collect`. It does not commit: see `ports`.
"""
