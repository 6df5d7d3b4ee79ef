"""Conversations, their threads (user inputs), tasks (agent runs), the event log
and the history items folded from it, plus hashed API tokens."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import models

from streaming.states import FINISHED_TASK_STATUSES, ConversationStatus, TaskStatus

__all__ = [
    "FINISHED_TASK_STATUSES",
    "ApiToken",
    "ClientThread",
    "Conversation",
    "ConversationStatus",
    "Event",
    "IdempotencyKey",
    "Item",
    "Task",
    "TaskStatus",
    "Thread",
]


class Conversation(models.Model):
    id = models.CharField(primary_key=True, max_length=64, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    # An anonymous visitor owns what its session created.
    session_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    title = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=32, choices=ConversationStatus.choices, default=ConversationStatus.IDLE)
    agent_name = models.CharField(max_length=100, blank=True, default="")
    # The worker running this conversation's run renews this lease; once it has
    # expired, any worker may end the run as failed (a crashed worker).
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    worker = models.CharField(max_length=200, blank=True, default="", editable=False)
    # The answer accepted for the question the run waits on, until the run takes
    # it: the control message that announces it is only a wake-up and may be lost.
    answer = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["owner", "-updated_at"], name="conv_owner_updated"),
            models.Index(fields=["session_key", "-updated_at"], name="conv_session_updated"),
            models.Index(fields=["status", "lease_expires_at"], name="conv_status_lease"),
            models.Index(fields=["-created_at"], name="conv_created"),  # the admin's newest-first list
        ]

    def __str__(self) -> str:
        return self.title or self.id


class Thread(models.Model):
    """One user input to a conversation."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="threads")
    query = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.query[:80]


class Task(models.Model):
    """One agent run, started by a thread (and possibly resumed by later ones)."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tasks")
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="tasks")
    agent_name = models.CharField(max_length=100)
    status = models.CharField(max_length=32, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status"], name="task_status")]

    def __str__(self) -> str:
        return f"{self.agent_name} {self.id}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class Event(models.Model):
    """One delivered envelope, exactly as it went on the wire (`body`)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    event = models.CharField(max_length=64, db_index=True)
    thread_id = models.CharField(max_length=64, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    item_id = models.CharField(max_length=128, blank=True, default="")
    agent_name = models.CharField(max_length=100, blank=True, default="")
    body = models.TextField(help_text="The envelope JSON exactly as delivered.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [models.UniqueConstraint(fields=["conversation", "seq"], name="event_unique_seq")]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.event}"

    @property
    def envelope(self) -> dict:
        return json.loads(self.body)


class Item(models.Model):
    """The history view: all events of one `item_id` folded as a reader sees them."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="items")
    item_id = models.CharField(max_length=128)
    event = models.CharField(max_length=64)
    role = models.CharField(max_length=16, blank=True, default="")
    thread_id = models.CharField(max_length=64, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    agent_name = models.CharField(max_length=100, blank=True, default="")
    payload = models.JSONField(default=dict)
    metadata = models.JSONField(null=True, blank=True)
    first_seq = models.PositiveBigIntegerField()
    last_seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["conversation", "first_seq"]
        constraints = [models.UniqueConstraint(fields=["conversation", "item_id"], name="item_unique_id")]

    def __str__(self) -> str:
        return f"{self.item_id} {self.event}"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` a principal sent with an input: a repeat starts no
    second run, it streams the first one. The unique constraint is what lets
    only one of two concurrent requests with the same key start a run."""

    principal = models.CharField(max_length=80)  # `Principal.key()`: who sent it
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of the request's input
    # Set once the run is started; until then a repeat is told to retry.
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.CASCADE)
    after_seq = models.PositiveBigIntegerField(default=0)  # the run's events come after this seq
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotency_unique_key")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"


class ApiToken(models.Model):
    """A bearer token for API clients; only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ClientThread(models.Model):
    """A client's own name for one of its conversations (an AG-UI `threadId`).

    Names are per owner, as conversations are: two owners' names never meet.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="client_threads")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    session_key = models.CharField(max_length=64, blank=True, default="")
    thread_id = models.CharField(max_length=200)
    # The client's last message taken as an input: the client sends its whole
    # history with every run, and must not run the same message twice.
    last_message_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "thread_id"], condition=models.Q(owner__isnull=False), name="client_thread_owner"
            ),
            models.UniqueConstraint(
                fields=["session_key", "thread_id"],
                condition=models.Q(owner__isnull=True),
                name="client_thread_session",
            ),
        ]

    def __str__(self) -> str:
        return self.thread_id
