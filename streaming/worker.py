"""This process's identity as a worker (for run leases and diagnostics)."""

import os
import socket
import uuid

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
