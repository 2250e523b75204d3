"""The runner layer: pool managers, scaling rules, providers, the GitHub client, webhooks and jobs.

Split by job (docs/design.md#one-code-path-for-three-entity-kinds): ``providers/`` runs external provider
executables, ``github/`` talks to the GitHub API. Neither touches the store.
"""
