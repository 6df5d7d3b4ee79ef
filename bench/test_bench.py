"""Tests of the bench's own parts: the SSE client, the completeness checks, the report.

Run with `.venv/bin/python -m pytest bench -q` after installing bench/requirements.txt;
two tests drive real servers: the reference app, and two workers (PostgreSQL + Redis).
"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import pytest

from bench import scenarios
from bench.report import Row, summary, table
from bench.sse_client import ChunkedDecoder, FrameSplitter, stream


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


def test_collector_reads_data_before_id_as_ours_write_it():
    sink = scenarios.Collector(keep_data=True)
    ours = [b'data: {"event":"message_chunk","seq":1}\nid: 1', b": ping", b'data: {"event":"done","seq":2}\nid: 2']
    sink(ours, perf=1.0, wall=1.0)
    assert (sink.events, sink.chunks, sink.done, sink.last_seq) == (2, 1, True, 2)
    assert sink.data == [b'{"event":"message_chunk","seq":1}', b'{"event":"done","seq":2}']


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
    assert latency.events == 30 and len(latency.first_events) == 3


def test_reference_app_imports_none_of_the_project():
    tree = ast.parse((Path(__file__).parent / "reference_app.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    project = {"streaming", "conversations", "valuecell_site", "bench", "tests", ""}
    assert not {name for name in imported if name.split(".")[0] in project}


# Ids and emit times differ from run to run; everything else must match byte for byte.
_VARYING = re.compile(rb'"(conv|th|task|item)-[0-9a-f]{32}"|"ts":[0-9.e+-]+')


def _normalized(frames: list[bytes]) -> list[bytes]:
    """Frames with their varying values masked and their lines in one order (ours write
    `data:` before `id:`, sse-starlette `id:` first)."""
    masked = [_VARYING.sub(lambda m: m.group(0).split(b"-")[0] + b'-x"' if m.group(1) else b'"ts":0', f) for f in frames]
    return [b"\n".join(sorted(f.split(b"\n"))) for f in masked]


def test_the_reference_sends_the_same_frames_as_ours_for_the_same_workload():
    pytest.importorskip("fastapi", reason="install bench/requirements.txt")
    from bench.servers import OurServer, ReferenceServer

    frames: dict[str, list[bytes]] = {}
    for name, server in (("reference", ReferenceServer()), ("ours", OurServer())):
        with server as target:
            sink: list[bytes] = frames.setdefault(name, [])
            keep = lambda got, perf, wall, sink=sink: sink.extend(f for f in got if b"id: " in f)  # noqa: E731
            body = {"query": "k=3 delay_ms=0", "agent_name": "bench"}
            asyncio.run(stream(target.host, target.port, "POST", "/agents/stream", keep, headers=target.headers,
                               json_body=body))  # fmt: skip
    assert len(frames["ours"]) == 8 and b'"event":"done"' in frames["ours"][-1]
    assert _normalized(frames["reference"]) == _normalized(frames["ours"])
    # Item ids: the chunks of one paragraph share theirs in both.
    chunk_items = {re.search(rb'"item_id":"([^"]+)"', f).group(1) for f in frames["reference"][3:6]}  # type: ignore[union-attr]
    assert len(chunk_items) == 1


def test_report_shows_two_workers_as_an_info_column_and_unmeasured_targets_as_such():
    rows = [
        Row("(a) events/s", None, 400.0, "ev/s", "ratio >= 0.5", lambda v, r: r >= 0.5, needs_ratio=True,
            two_workers=300.0, measured=False),
        Row("    (a') followed on B", None, None, "ev/s", two_workers=250.0),
    ]  # fmt: skip
    lines = table(rows, two_workers=True)
    assert lines[0].split()[-2:] == ["2", "workers"]
    assert lines[2].split()[-4:] == ["not", "measured", "300", "ev/s"]
    assert lines[3].split()[-3:] == ["info", "250", "ev/s"]
    assert "workers" not in table(rows)[0]
    assert summary(rows).startswith("No target measured")


def _crossing(events_per_s: float) -> scenarios.Crossing:
    run = scenarios.Throughput(1000, 1000 / events_per_s, 0.01)
    return scenarios.Crossing(origin=run, follower=run, follower_opened_s=0.02, lag_s=0.003)


def test_rows_put_two_worker_figures_beside_ours_and_keep_verdicts_on_ours():
    from bench.figures import Figures
    from bench.run import parse_args, rows

    args = parse_args([])
    ours = Figures(throughput=[scenarios.Throughput(1000, 0.1, 0.005)], replay=[scenarios.Throughput(10, 0.5, 0.01)])
    two = Figures(throughput=[scenarios.Throughput(1000, 0.2, 0.030)], crossing=[_crossing(4000.0), _crossing(2000.0)])
    table_rows = {row.metric.strip()[:4]: row for row in rows(ours, None, args, two)}
    assert (table_rows["(1) "].ours, table_rows["(1) "].two_workers) == (10_000, 5_000)
    assert table_rows["(1) "].verdict == "n/a (no reference run)"
    assert table_rows["(a')"].two_workers == 3000.0 and table_rows["(a')"].verdict == "info"
    assert table_rows["(d) "].verdict == "PASS" and table_rows["(d) "].two_workers is None


def test_ratio_targets_of_the_four_scenarios_and_server_cost_rows():
    from bench.figures import Figures
    from bench.run import parse_args, rows

    args = parse_args(["--sequential", "10", "--held", "4", "--streams", "2"])
    held = scenarios.Latency(4, [0.001], 2.0, events=100, first_events=[0.3, 0.3, 0.3, 0.3])
    ours = Figures(
        throughput=[scenarios.Throughput(20_000, 2.0, 0.005)],  # 10,000 ev/s
        sequential=[scenarios.Sequential([0.003] * 10)],  # 3 ms
        latency=[scenarios.Latency(2, [0.010] * 99 + [0.050], 1.0, events=400)],  # 400 ev/s, p99 10 ms
        held=[held],
        server_cpu={"1": [1.0], "2": [0.05], "3": [0.4], "4": [0.2]},
        rss_growth=[4 * 100 * 1024],  # 100 KB per held stream
    )
    ref = Figures(
        throughput=[scenarios.Throughput(20_000, 4.0, 0.005)],  # 5,000 ev/s
        sequential=[scenarios.Sequential([0.001] * 10)],
        latency=[scenarios.Latency(2, [0.004] * 100, 1.0, events=500)],
        held=[scenarios.Latency(4, [0.001], 2.0, events=100, first_events=[0.1, 0.1, 0.1, 0.1])],
        rss_growth=[4 * 40 * 1024],
    )
    table_rows = rows(ours, ref, args)

    def find(start: str):
        return next(row for row in table_rows if row.metric.strip().startswith(start))

    assert find("(1)").verdict == "PASS"  # 2x the reference's events/s
    assert find("(2)").verdict == "PASS"  # exactly 3x
    assert find("(3)").verdict == "MISSED"  # 0.8x the events/s
    assert find("message_chunk emit->receive p99").verdict == "MISSED"  # 2.5x
    assert find("(4)").verdict == "MISSED"  # first event p50 0.3 s against 0.1 s
    by_metric = {row.metric.strip(): row for row in table_rows}
    assert by_metric["peak RSS growth per stream (first run)"].ratio == pytest.approx(2.5)
    assert by_metric["server CPU per event"].ours == pytest.approx(50.0)  # 1 s over 20,000 events, in µs
    per_stream = by_metric["server CPU per stream (set-up and its 10 events)"]
    assert per_stream.ours == pytest.approx(5.0)  # 50 ms over 10 streams
    setup = by_metric["of which set-up (less 10 x (1)'s CPU per event)"]
    assert setup.ours == pytest.approx(5.0 - 10 * 0.05)


def test_only_two_workers_without_services_is_a_skipped_report_not_a_failure(monkeypatch, capsys):
    from bench.run import main

    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
    assert main(["--only", "two-workers", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 workers: SKIPPED: PostgreSQL/Redis not reachable (PostgreSQL at postgres://postgres@127.0.0.1:1/" in out
    assert "set DATABASE_URL and REDIS_URL" in out and "No target measured" in out


def test_service_urls_take_only_a_postgres_database_url(monkeypatch):
    from bench.cluster import DEFAULT_DATABASE_URL, service_urls

    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.sqlite3")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/2")
    assert service_urls() == (DEFAULT_DATABASE_URL, "redis://example:6379/2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/x")
    assert service_urls()[0] == "postgresql://u:p@db/x"


@pytest.mark.services
def test_two_workers_follow_across_and_drop_their_database():
    """Needs PostgreSQL and Redis: skipped without them, failed under CI=true."""
    import psycopg

    from bench.cluster import TwoWorkers, Unavailable, check_services
    from tests.conftest import IN_CI

    try:
        services = check_services()
    except Unavailable as exc:
        if IN_CI:
            pytest.fail(f"the two-worker bench needs PostgreSQL and Redis under CI: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL/Redis not reachable ({exc})")
    cluster = TwoWorkers(services)
    with cluster as (a, b):
        crossing = asyncio.run(scenarios.follow_across(a, b, 300))
        latency = asyncio.run(scenarios.latency_spread([a, b], 4, 5, 1))
    assert crossing.follower.events == crossing.origin.events == 305
    assert 0 < crossing.follower_opened_s < crossing.follower.seconds
    assert len(latency.samples) == 20
    with psycopg.connect(services.database_url) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (cluster.name,)).fetchone()
    assert exists is None


async def test_a_stream_that_never_ends_fails_the_latency_scenario_instead_of_hanging_it(monkeypatch):
    from bench.servers import Target

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request's head; its body is never read
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (3, b": \n"))
        await writer.drain()
        # ...and then nothing: no event, no end of body.

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(scenarios, "STREAMS_DEADLINE_S", 0.5)
    async with server:
        with pytest.raises(scenarios.Incomplete, match="2 of 2 streams had not ended 0.5 s after they started"):
            await scenarios.latency_spread([Target("silent", "127.0.0.1", port, {})], 2, 1, 0)


def test_a_failed_two_worker_scenario_is_named_with_its_reason_and_fails_the_run():
    from bench.figures import Figures
    from bench.run import two_workers_note, two_workers_verdict
    from bench.two_workers import Outcome

    outcome = Outcome(figures=Figures(failures={"c": "71 of 200 streams failed"}), server_errors=["71 x PoolTimeout: x"])
    assert outcome.failed and two_workers_verdict(outcome) == "2 workers: FAILED (c) (exit 1)."
    assert two_workers_note(outcome)[1:] == [
        "           (c) FAILED: 71 of 200 streams failed",
        "           workers' log: 71 x PoolTimeout: x",
    ]
    assert not Outcome(skipped="down").failed and two_workers_verdict(Outcome(skipped="down")) == ""
