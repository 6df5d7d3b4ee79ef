"""Tests of the bench's own parts: the SSE client, the completeness checks, the report.

Run with `.venv/bin/python -m pytest bench -q` after installing bench/requirements.txt;
the last test drives the reference app through the client end to end.
"""

from __future__ import annotations

import asyncio

import pytest

from bench import scenarios
from bench.report import Row, summary, table
from bench.sse_client import ChunkedDecoder, FrameSplitter


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def frame(seq: int, event: str = "message_chunk", ts: float | None = None) -> bytes:
    metadata = f',"metadata":{{"ts":{ts},"i":0}}' if ts is not None else ""
    return f'id: {seq}\ndata: {{"event":"{event}","data":{{"conversation_id":"c"{metadata}}},"seq":{seq}}}\n\n'.encode()


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_chunked_decoder_reassembles_a_body_fed_in_any_slices(step):
    body = [b"hello ", b"chunked", b" world" * 50]
    wire = chunked(*body)
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(wire[i : i + step]) for i in range(0, len(wire), step))
    assert out == b"".join(body)
    assert decoder.finished


def test_frame_splitter_yields_whole_frames_only():
    seen: list[bytes] = []
    splitter = FrameSplitter(lambda frames, perf, wall: seen.extend(frames))
    wire = b"retry: 3000\n\n" + frame(1) + frame(2)
    splitter.feed(wire[:20], 0.0, 0.0)
    splitter.feed(wire[20:-5], 0.0, 0.0)
    assert seen == [b"retry: 3000", frame(1)[:-2]]
    splitter.feed(wire[-5:], 0.0, 0.0)
    assert seen[-1] == frame(2)[:-2]


def test_collector_counts_events_and_measures_latency_from_metadata_ts():
    sink = scenarios.Collector(keep_latency=True)
    sink([frame(1, "task_started"), frame(2, ts=100.0)[:-2], frame(3, "done")[:-2]], perf=5.0, wall=100.25)
    assert (sink.events, sink.chunks, sink.done, sink.first_at) == (3, 1, True, 5.0)
    assert sink.latencies == [pytest.approx(0.25)]
    sink.check("ok", events=3, chunks=1)


def test_collector_rejects_gaps_and_missing_done():
    sink = scenarios.Collector()
    sink([frame(1)[:-2], frame(3)[:-2]], 0.0, 0.0)
    with pytest.raises(scenarios.Incomplete, match="seq gaps.*no final `done`"):
        sink.check("gappy", events=2)


def test_percentile_is_nearest_rank():
    latency = scenarios.Latency(1, [i / 1000 for i in range(1, 101)], 1.0)
    assert latency.percentile(50) == 0.050
    assert latency.percentile(99) == 0.099
    assert latency.percentile(100) == 0.100


def test_report_marks_missed_targets_and_ratio_targets_without_reference():
    rows = [
        Row("(a) events/s", 100.0, 400.0, "ev/s", "ratio >= 0.5", lambda v, r: r >= 0.5, needs_ratio=True),
        Row("(b) first event", 10.0, 5.0, "ms", "< 20 ms", lambda v, r: v < 20),
        Row("(d) replay", 2.0, None, "s", "< 1 s", lambda v, r: v < 1),
        Row("(a') events/s", 100.0, None, "ev/s", "ratio >= 0.5", lambda v, r: r >= 0.5, needs_ratio=True),
    ]
    assert [row.verdict for row in rows] == ["MISSED", "PASS", "MISSED", "n/a (no reference run)"]
    assert "0.25" in "\n".join(table(rows))
    assert summary(rows) == "MISSED 2 target(s): (a), (d)"


def test_reference_app_streams_every_envelope_through_the_client():
    pytest.importorskip("fastapi", reason="install bench/requirements.txt")
    pytest.importorskip("sse_starlette", reason="install bench/requirements.txt")
    from bench.servers import ReferenceServer

    with ReferenceServer() as target:
        result, sink = asyncio.run(scenarios.throughput(target, 50, keep_data=True))
        latency = asyncio.run(scenarios.latency(target, 3, 5, 1))
    assert result.events == 55 and sink.chunks == 50
    assert len(latency.samples) == 15 and all(-0.01 < s < 1 for s in latency.samples)
