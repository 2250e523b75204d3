"""``python -m pygarm.cli``: the same as the ``pygarm`` command."""

from pygarm.cli.main import main

main()
