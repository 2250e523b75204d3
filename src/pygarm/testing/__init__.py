"""Stand-ins for the outside world: a fake GitHub API and an external test provider.

``fake_github`` serves what docs/garm-protocol.md#what-a-fake-github-must-serve lists (run it with
``python -m pygarm.testing.fake_github``); ``test_provider.py`` is an executable provider (stdlib only)
implementing docs/garm-protocol.md#minimal-provider. See ``docs/testing.md``.
"""
