"""Keep a local copy of a pygarm server's pools and runners, and print a one-line summary after each
change, until Ctrl-C.

The copy comes from a snapshot plus the events stream (a :class:`~pygarm.client.StateMirror`): it
never re-lists over REST, survives server restarts and network cuts without missing or doubling a
change, and takes a new snapshot by itself if the server's log no longer reaches back::

    python examples/state_mirror.py                       # the active garm-cli / pygarm profile
    python examples/state_mirror.py http://127.0.0.1:9997 "$TOKEN"
"""

import sys
from collections import Counter

from pygarm.client import GarmClient, GarmClientError, ProfileError, ProfileFile, StateMirror


def main() -> None:
    if len(sys.argv) == 3:
        base_url, token = sys.argv[1], sys.argv[2]
    else:
        try:
            profile = ProfileFile.load().require()
        except ProfileError as exc:
            sys.exit(f"state_mirror: {exc}")
        base_url, token = profile.base_url, profile.bearer_token

    with GarmClient(base_url, token) as garm:
        mirror = StateMirror(garm, filters=["pool", "instance"])

        @mirror.on_change
        def summarize(entity_type: str, operation: str, payload: object) -> None:
            state = mirror.state
            statuses = Counter(runner.status for runner in state.get("instance", {}).values())
            runners = ", ".join(f"{status or '?'}: {n}" for status, n in sorted(statuses.items()))
            print(
                f"{entity_type} {operation}: {len(state.get('pool', {}))} pools; runners {runners or 'none'}"
            )

        try:
            with mirror:  # connects and waits for the snapshot (raises on a bad token or URL)
                print(f"mirroring {base_url} at seq {mirror.seq}; Ctrl-C to stop", flush=True)
                while True:  # until Ctrl-C; raises what stops the mirror (e.g. a revoked token)
                    try:
                        mirror.wait_for(lambda _mirror: False, timeout=3600)
                    except TimeoutError:
                        continue
        except KeyboardInterrupt:
            pass
        except (GarmClientError, TimeoutError) as exc:  # TimeoutError: no snapshot (not pygarm)
            sys.exit(f"state_mirror: {exc}")


if __name__ == "__main__":
    main()
