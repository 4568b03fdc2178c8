"""The user's mistakes when querying a cube (the CLI reports these, and only these, as
usage errors; anything else is a bug and is shown as one)."""


class QueryError(ValueError):
    """A query that cannot be answered as asked: an unknown dimension, a value off
    the grid, a malformed expression, ... The message says what to do instead."""


class ExpressionError(QueryError):
    """An expression that :func:`pipeline.query.where` cannot or will not evaluate."""
