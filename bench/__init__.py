"""`make bench`: throughput, first event, emit->receive latency and replay time of
the streaming stack, side by side with a FastAPI + sse-starlette reference app."""
