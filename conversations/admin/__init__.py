"""The Django admin, a door for operators: conversations with their timeline,
read-only tasks, threads and events, and API tokens. Importing this package
registers every model admin (Django's autodiscovery imports `conversations.admin`).
"""

from conversations.admin import conversations, events, tasks, tokens

__all__ = ["conversations", "events", "tasks", "tokens"]
