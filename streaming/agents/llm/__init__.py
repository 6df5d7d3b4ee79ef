"""The `llm` agent: a model behind any OpenAI-compatible endpoint, streamed token
by token, with reasoning and market-data tool calls (docs/llm.md)."""
