"""The ``pygarm`` command line: typer app in ``main``, one module per noun."""
