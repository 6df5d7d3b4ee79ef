"""Conversations: the models that keep everything agents did, the history API,
ownership and API tokens, the admin and the chat page."""
