"""The states of a conversation and of a task, shared by the record (models),
the event log (a `done` carries its conversation's next state) and the runtime.
"""

from __future__ import annotations

from django.db import models


class ConversationStatus(models.TextChoices):
    IDLE = "idle", "idle"
    RUNNING = "running", "running"
    REQUIRE_USER_INPUT = "require_user_input", "require user input"


class TaskStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    WAITING_INPUT = "waiting_input", "waiting input"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINISHED_TASK_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
