// The real @ag-ui/client against a live server, for tests/e2e/test_agui_client.py.
// usage: node agui_scenarios.mjs '<json: {scenario, url, token, threadId, query, ...}>'
// Prints one JSON object: what the client saw (events, messages, outcomes, failures).
import { buildResumeArray } from "@ag-ui/client";

import { ResumableHttpAgent } from "./resumable_agent.mjs";

// @ag-ui/client 1.0.0 rethrows a failed reader teardown as an unhandled rejection
// after a broken body; record it instead of letting it kill the process.
const unhandled = [];
process.on("unhandledRejection", (error) => unhandled.push(String(error?.message ?? error)));

const options = JSON.parse(process.argv[2]);

function newAgent(AgentClass = ResumableHttpAgent) {
  return new AgentClass({
    url: `${options.url}/ag-ui/${options.agent ?? "demo"}`,
    headers: options.token ? { Authorization: `Bearer ${options.token}` } : {},
    threadId: options.threadId,
    initialMessages: [{ id: "user-1", role: "user", content: options.query }],
  });
}

// What one run looked like to the client: every event after its checks, and how it ended.
function recorder() {
  const seen = { events: [], failed: null, runErrors: [], finished: [] };
  const subscriber = {
    onEvent: ({ event }) => {
      seen.events.push(event);
    },
    onRunFailed: ({ error }) => {
      seen.failed = `${error?.constructor?.name}: ${error?.message}`;
    },
    onRunErrorEvent: ({ event }) => {
      seen.runErrors.push(event);
    },
    onRunFinishedEvent: (params) => {
      seen.finished.push({ outcome: params.outcome, interrupts: params.interrupts ?? null });
    },
  };
  return { seen, subscriber };
}

async function run(agent, parameters) {
  const { seen, subscriber } = recorder();
  try {
    await agent.runAgent(parameters, subscriber);
  } catch (error) {
    seen.rejected = `${error?.constructor?.name}: ${error?.message}`;
  }
  return seen;
}

// A run with reasoning, tool calls, components and a streamed answer.
async function tools() {
  const agent = newAgent();
  const first = await run(agent, { runId: "run-tools" });
  return { runs: [first], messages: agent.messages, lastEventId: agent.lastEventId };
}

// A question ends the run with an interrupt; the next run answers it with `resume`.
async function interrupt() {
  const agent = newAgent();
  const asked = await run(agent, { runId: "run-asks" });
  const pending = structuredClone(agent.pendingInterrupts);
  // HttpAgent itself refuses to run on while the interrupt is not addressed.
  const unaddressed = await run(agent, { runId: "run-ignores" });
  const resume = buildResumeArray(agent.pendingInterrupts, {
    [pending[0]?.id]: { status: "resolved", payload: { answer: options.answer } },
  });
  const answered = await run(agent, { runId: "run-answers", resume });
  return {
    runs: [asked, unaddressed, answered],
    pending,
    pendingAfter: agent.pendingInterrupts,
    messages: agent.messages,
  };
}

// The frames of a response as they pass ({id, data}: the raw `id:` and `data:` of each).
function recording(response, frames) {
  if (!response.ok || !response.body) return response;
  const decoder = new TextDecoder();
  let buffer = "";
  const record = new TransformStream({
    transform: (chunk, controller) => {
      buffer += decoder.decode(chunk, { stream: true });
      const complete = buffer.split("\n\n");
      buffer = complete.pop();
      for (const frame of complete) {
        const lines = frame.split("\n");
        const data = lines.find((line) => line.startsWith("data: "));
        const id = lines.find((line) => line.startsWith("id: "));
        if (data) frames.push({ id: id ? id.slice(4) : null, data: data.slice(6) });
      }
      controller.enqueue(chunk);
    },
  });
  const { status, statusText, headers } = response;
  return new Response(response.body.pipeThrough(record), { status, statusText, headers });
}

// An agent whose first stream is cut right after a given frame (as a dropped connection would):
// the Nth TEXT_MESSAGE_CONTENT frame that carries an id, or with `cutInside`, the first frame of
// that type whose id is `N.k` (a frame inside one stored event's frames, not its last).
class CuttingAgent extends ResumableHttpAgent {
  cutAfterContent = options.cutAfterContent ?? 3;
  cutInside = options.cutInside ?? null;
  contents = 0;
  cut = null;
  resumedFrames = []; // the frames of the streams after the cut, as sent

  isCutPoint(frame, id) {
    if (!id) return false;
    if (this.cutInside) return id.includes(".") && frame.includes(`"type":"${this.cutInside}"`);
    return frame.includes('"type":"TEXT_MESSAGE_CONTENT"') && ++this.contents === this.cutAfterContent;
  }

  remember(response) {
    if (this.cut !== null) return super.remember(recording(response, this.resumedFrames));
    if (!response.ok || !response.body) return super.remember(response);
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = "";
    const cutting = new TransformStream({
      transform: (chunk, controller) => {
        buffer += decoder.decode(chunk, { stream: true });
        const frames = buffer.split("\n\n");
        buffer = frames.pop();
        for (const frame of frames) {
          controller.enqueue(encoder.encode(`${frame}\n\n`));
          const idLine = frame.split("\n").find((line) => line.startsWith("id:"));
          const id = idLine?.slice(3).trim();
          if (id) this.lastEventId = id;
          if (this.isCutPoint(frame, id)) {
            this.cut = { id, frame };
            controller.terminate(); // the rest of the body never arrives
            return;
          }
        }
      },
    });
    const { status, statusText, headers } = response;
    return new Response(response.body.pipeThrough(cutting), { status, statusText, headers });
  }
}

// A run cut inside a message (or inside one stored event's frames), then resumed from the
// last id the client read.
async function resume() {
  const agent = newAgent(CuttingAgent);
  const first = await run(agent, { runId: "run-cut" });
  const kept = structuredClone(agent.messages);
  const { seen: resumed, subscriber } = recorder();
  try {
    await agent.connectAgent({}, subscriber);
  } catch (error) {
    resumed.rejected = `${error?.constructor?.name}: ${error?.message}`;
  }
  return {
    runs: [first, resumed],
    cut: agent.cut,
    kept,
    messages: agent.messages,
    finished: agent.finished,
    resumedFrames: agent.resumedFrames,
  };
}

const scenarios = { tools, interrupt, resume };
const result = await scenarios[options.scenario]();
process.stdout.write(JSON.stringify({ ...result, unhandled }));
