"""``console://``: an apprise service that writes alerts to the terminal.

For a first run or a demo, with no mail server or chat at hand: ``notifiers: {screen:
"console://"}``. It is a real apprise plugin (registered on import), so alerts reach it
through the same outbox, rendering and bookkeeping as any other service.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from apprise.decorators import notify

# Where console:// writes; None is standard output, looked up at each write (the daemon's log
# lines go to standard error).
stream: TextIO | None = None
_RULE = "─" * 72


@notify(on="console", name="watcher terminal", body_format="text")  # type: ignore[no-untyped-call,untyped-decorator]
def _write(body: str, title: str, notify_type: str, *args: Any, **kwargs: Any) -> bool:
    out = stream or sys.stdout
    out.write(f"{_RULE}\n{title}\n\n{body.rstrip()}\n{_RULE}\n")
    out.flush()
    return True
