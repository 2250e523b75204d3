"""Stand-ins for the outside world: a fake GitHub API and an external test provider.

``fake_github`` serves what runner spec §4.4 lists (run it with ``python -m tests.fakes.fake_github``);
``test_provider.py`` is an executable provider (stdlib only) implementing §1.8. See ``docs/testing.md``.
"""
