"""This process's identity as a worker, and lease holders for its runs."""

import os
import socket
import uuid

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def new_holder() -> str:
    """A lease holder: this worker plus one run (two runs of one worker never mix up)."""
    return f"{WORKER_ID}/{uuid.uuid4().hex[:12]}"
