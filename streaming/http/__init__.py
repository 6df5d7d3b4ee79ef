"""The HTTP door: the JSON API and the SSE transport (`POST /agents/stream`,
`/conversations/...`). Views parse, call the runtime and encode; nothing more.
"""
