"""Print every event a GARM (or pygarm) server emits, one JSON object per line, until Ctrl-C.

The Python twin of GARM's ``garm-cli debug-events``, written with the GARM-style reader::

    python examples/print_events.py                       # the active garm-cli / pygarm profile
    python examples/print_events.py http://127.0.0.1:9997 "$TOKEN"
"""

import sys

from pygarm.client import TEXT_MESSAGE, EventReader, GarmClientError, ProfileError, ProfileFile


def print_event(message_type: int, data: bytes) -> None:
    print(data.decode(), flush=True)


if len(sys.argv) == 3:
    base_url, token = sys.argv[1], sys.argv[2]
else:
    try:
        profile = ProfileFile.load().require()
    except ProfileError as exc:  # no profile yet: say what to do, without a traceback
        sys.exit(f"print_events: {exc}")
    base_url, token = profile.base_url, profile.bearer_token

reader = EventReader(base_url, token=token, handler=print_event)
try:
    reader.start()  # HandshakeError (a bad token: 401 with GARM's details) or ConnectError
except GarmClientError as exc:
    sys.exit(f"print_events: {exc}")
reader.write_message(TEXT_MESSAGE, b'{"send-everything": true}')
reader.wait()  # until the server closes the stream, or Ctrl-C stops the reader
if reader.error is not None:
    sys.exit(f"print_events: {reader.error}")
