"""The runtime: the orchestrator that accepts inputs, the runs it starts in the
background, and each worker's maintenance (reaper, shutdown). No HTTP, no sockets.
"""
