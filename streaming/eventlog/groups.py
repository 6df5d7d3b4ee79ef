"""Channel-layer group names, one place for the naming scheme."""


def conversation_group(conversation_id: str) -> str:
    """Followers of a conversation's events join this group."""
    return f"events.{conversation_id}"


def control_group(conversation_id: str) -> str:
    """The run of a conversation listens here for cancel and answers."""
    return f"control.{conversation_id}"


# Layer message types.
EVENTS_MESSAGE = "stream.events"
CANCEL_MESSAGE = "run.cancel"
ANSWER_MESSAGE = "run.answer"
