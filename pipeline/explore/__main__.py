"""``python -m pipeline.explore CUBE [--html FILE] ...`` (the ``marshall explore`` command)."""

import typer

from .cli import register

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
register(app)

if __name__ == "__main__":
    app()
