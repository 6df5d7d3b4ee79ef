"""The page's own SSE parser and backoff, run in Chromium: every rule of the event
stream format the page relies on, fed in awkward chunks."""

from __future__ import annotations

import pytest

from .chat import ChatPage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PARSE_JS = """
async (chunks) => {
  const { SseParser } = await import('/static/chat/sse.js');
  const parser = new SseParser();
  const events = chunks.flatMap((chunk) => parser.push(chunk));
  return { events, retry: parser.retry, comments: parser.comments, lastEventId: parser.lastEventId };
}
"""

CASES = [
    # (chunks, expected events as (type, data, id), retry, comments)
    (["id: 1\ndata: {\"a\":1}\n\n"], [("message", '{"a":1}', "1")], None, 0),
    (["data: first\ndata: second\ndata:\n\n"], [("message", "first\nsecond\n", "")], None, 0),
    ([": ping\n\n", ":another\n", "data: x\n\n"], [("message", "x", "")], None, 2),
    (["id: 7\ndata: a\n\ndata: b\n\n"], [("message", "a", "7"), ("message", "b", "7")], None, 0),
    (["retry: 3000\n\n", "retry: soon\n\n"], [], 3000, 0),
    (["data: a\r", "\ndata: b\r\n\r\n"], [("message", "a\nb", "")], None, 0),
    (["data: a\rdata: b\r\r"], [("message", "a\nb", "")], None, 0),
    (["da", "ta: hel", "lo\n", "\n"], [("message", "hello", "")], None, 0),
    (["data:x\n\ndata:  y\n\n"], [("message", "x", ""), ("message", " y", "")], None, 0),
    (["\ufeffdata: bom\n\n"], [("message", "bom", "")], None, 0),
    (["event: custom\ndata: z\n\n"], [("custom", "z", "")], None, 0),
    (["id: 3\n\n", "id: bad\u0000id\ndata: q\n\n"], [("message", "q", "3")], None, 0),
    (["data\n\n"], [("message", "", "")], None, 0),
    (["unknown: field\ndata: kept\n\n"], [("message", "kept", "")], None, 0),
    (["data: never finished\n"], [], None, 0),
]


@pytest.fixture
def parse(chat: ChatPage):
    chat.open()

    def run(chunks: list[str]) -> dict:
        return chat.page.evaluate(PARSE_JS, chunks)

    return run


def test_sse_parser_follows_the_event_stream_rules(parse):
    for chunks, expected, retry, comments in CASES:
        result = parse(chunks)
        got = [(e["type"], e["data"], e["id"]) for e in result["events"]]
        assert got == expected, chunks
        assert result["retry"] == retry, chunks
        assert result["comments"] == comments, chunks


def test_sse_parser_reads_a_real_stream_cut_at_every_byte(parse):
    stream = "retry: 3000\n\nid: 1\ndata: {\"seq\":1}\n\n: ping\n\nid: 2\r\ndata: {\"seq\":2}\r\n\r\n"
    result = parse(list(stream))
    assert [(e["data"], e["id"]) for e in result["events"]] == [('{"seq":1}', "1"), ('{"seq":2}', "2")]
    assert result["retry"] == 3000
    assert result["lastEventId"] == "2"


def test_backoff_grows_exponentially_up_to_the_servers_retry(chat: ChatPage):
    chat.open()
    delays = chat.page.evaluate(
        """async () => {
          const { backoffDelay } = await import('/static/chat/stream.js');
          return [0, 1, 2, 3, 4, 8].map((n) => [backoffDelay(n, 3000), backoffDelay(n, null)]);
        }"""
    )
    nominal = [(500, 500), (1000, 1000), (2000, 2000), (3000, 4000), (3000, 5000), (3000, 5000)]
    for (with_retry, default), (want_retry, want_default) in zip(delays, nominal, strict=True):
        assert 0.8 * want_retry <= with_retry <= 1.2 * want_retry
        assert 0.8 * want_default <= default <= 1.2 * want_default
