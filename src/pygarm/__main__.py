"""``python -m pygarm`` is the ``pygarm`` command (for a virtualenv whose ``bin/`` is not on ``PATH``)."""

from pygarm.cli.main import main

if __name__ == "__main__":
    main()
