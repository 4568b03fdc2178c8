"""Errors of the store (no imports: every store module uses them)."""


class StoreError(RuntimeError):
    """A store that cannot be created, resumed or written as asked."""


class LockError(StoreError):
    """The store is being written by another run (or its lock is unreadable)."""
