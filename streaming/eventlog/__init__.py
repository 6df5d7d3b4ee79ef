"""The event log: numbering a run's events, storing them in batches and
publishing them (`writer`), and following a conversation exactly once
(`follow`) over the channel layer (`groups`, `layer_receive`, `local_layer`).

It is given an event store (`streaming.stored.EventStore`); it imports none.
"""
