import httpx

from tests.e2e.client import names, run, resume


def test_bench_run_streams_every_event_in_order(daphne_server):
    with httpx.Client(base_url=daphne_server.url, timeout=30) as client:
        response, events = run(client, "k=20 delay_ms=0", agent_name="bench")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert names(events) == ["conversation_started", "thread_started", "task_started"] + ["message_chunk"] * 20 + [
            "task_completed",
            "done",
        ]
        assert [e["seq"] for e in events] == list(range(1, 26))
        conversation_id = events[0]["data"]["conversation_id"]
        assert resume(client, conversation_id, 0) == events
