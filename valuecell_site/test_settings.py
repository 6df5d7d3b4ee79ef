"""Settings for the in-process test suite: the embedded defaults, always.

DATABASE_URL/REDIS_URL (set by .ci/run) are for the scale-out tests' real
workers (tests/scaleout); code running inside pytest uses SQLite and the
in-memory channel layer, so no two runs ever share state.
"""

import os
import tempfile

from valuecell_site.settings import *
from valuecell_site.settings import BASE_DIR

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BASE_DIR / "db.sqlite3"),
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
        # One file per test process: two suites running side by side never share it.
        "TEST": {
            "NAME": os.environ.get("SQLITE_TEST_NAME")
            or os.path.join(tempfile.gettempdir(), f"vc-test-{os.getpid()}.sqlite3")
        },
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "streaming.eventlog.local_layer.LocalChannelLayer"}}
