// An @ag-ui/client HttpAgent that can resume a run whose stream broke, over
// valuecell-streaming's AG-UI door (docs/dialects.md, "Resuming an AG-UI run").
//
// AG-UI has no resumption of its own, and HttpAgent reads only the `data:` lines
// of the stream. This subclass also remembers the `id:` of the last complete
// frame it read (a stored event's seq `N`, or `N.k` for a frame before that
// event's last), and `connectAgent()` asks the server for the rest of the
// thread's run after it:
//   GET <url>/threads/<threadId>/stream   Last-Event-ID: <id>   (?runId=<the run's id>)
// The server starts that stream with RUN_STARTED and re-opens the message, the
// reasoning block or the tool calls the cursor fell inside, so what the agent
// already holds is kept and completed: no gap, no duplicate.
//
//   const agent = new ResumableHttpAgent({ url: "https://host/ag-ui/demo", threadId });
//   try { await agent.runAgent({ runId }); } catch (e) { /* the stream broke */ }
//   if (agent.lastEventId !== undefined && !agent.finished) await agent.connectAgent();
import { HttpAgent, runHttpRequest, transformHttpEventStream } from "@ag-ui/client";

export class ResumableHttpAgent extends HttpAgent {
  constructor(config) {
    const fetchImpl = config.fetch ?? ((url, init) => fetch(url, init));
    super({ ...config, fetch: async (url, init) => this.remember(await fetchImpl(url, init)) });
    this.lastEventId = undefined; // the id of the last complete frame read
    this.lastRunId = undefined;
    this.finished = false; // the last run read its RUN_FINISHED or RUN_ERROR
    this.subscribe({
      onRunStartedEvent: () => {
        this.finished = false;
      },
      onRunFinishedEvent: () => {
        this.finished = true;
      },
      onRunErrorEvent: () => {
        this.finished = true;
      },
    });
  }

  run(input) {
    this.lastRunId = input.runId;
    return super.run(input);
  }

  connect() {
    const url = new URL(`${this.url}/threads/${encodeURIComponent(this.threadId)}/stream`);
    if (this.lastRunId) url.searchParams.set("runId", this.lastRunId);
    const headers = { ...this.headers, Accept: "text/event-stream" };
    if (this.lastEventId !== undefined) headers["Last-Event-ID"] = this.lastEventId;
    this.abortController = new AbortController();
    const request = () => this.fetch(url.toString(), { method: "GET", headers, signal: this.abortController.signal });
    return transformHttpEventStream(runHttpRequest(request), this.debugLogger);
  }

  // The response, passed through unchanged, reading the ids of complete frames on the way.
  remember(response) {
    if (!response.ok || !response.body) return response;
    const decoder = new TextDecoder();
    let buffer = "";
    const ids = new TransformStream({
      transform: (chunk, controller) => {
        buffer += decoder.decode(chunk, { stream: true });
        const frames = buffer.split("\n\n");
        buffer = frames.pop();
        for (const frame of frames) {
          for (const line of frame.split("\n")) if (line.startsWith("id:")) this.lastEventId = line.slice(3).trim();
        }
        controller.enqueue(chunk);
      },
    });
    const { status, statusText, headers } = response;
    return new Response(response.body.pipeThrough(ids), { status, statusText, headers });
  }
}
