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

// An agent whose first stream is cut right after a given frame (as a dropped connection would).
class CuttingAgent extends ResumableHttpAgent {
  cutAfterContent = options.cutAfterContent ?? 3; // the Nth TEXT_MESSAGE_CONTENT frame that carries an id
  cut = null;

  remember(response) {
    if (this.cut !== null || !response.ok || !response.body) return super.remember(response);
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = "";
    let contents = 0;
    const cutting = new TransformStream({
      transform: (chunk, controller) => {
        buffer += decoder.decode(chunk, { stream: true });
        const frames = buffer.split("\n\n");
        buffer = frames.pop();
        for (const frame of frames) {
          controller.enqueue(encoder.encode(`${frame}\n\n`));
          const id = frame.split("\n").find((line) => line.startsWith("id:"));
          if (id) this.lastEventId = id.slice(3).trim();
          if (id && frame.includes('"type":"TEXT_MESSAGE_CONTENT"') && ++contents === this.cutAfterContent) {
            this.cut = { id: this.lastEventId, frame };
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

// A run cut inside a message, then resumed from the last id the client read.
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
  return { runs: [first, resumed], cut: agent.cut, kept, messages: agent.messages, finished: agent.finished };
}

const scenarios = { tools, interrupt, resume };
const result = await scenarios[options.scenario]();
process.stdout.write(JSON.stringify({ ...result, unhandled }));
