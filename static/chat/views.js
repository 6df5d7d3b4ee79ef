// One small view per kind of history item: it builds its element from an item
// or its first event, then applies the item's later events in place.

import { lineChart, parseChart } from "./chart.js";
import { el, formatDuration, plural, toolResultText } from "./format.js";
import { setMarkdown } from "./markdown.js";

const text = (payload) => (payload && typeof payload.content === "string" ? payload.content : "");

export class UserTurn {
  constructor(item) {
    this.el = el("div", "turn-user");
    this.el.append(el("div", "bubble", text(item.payload)));
  }
}

export class Reasoning {
  constructor(item, { live }) {
    this.startedAt = live ? performance.now() : null;
    this.el = el("details", "reasoning");
    this.summary = el("summary");
    this.label = el("span", "reasoning-label");
    this.summary.append(el("span", "spinner", ""), this.label);
    this.body = el("div", "reasoning-body");
    this.bodyText = document.createTextNode(text(item.payload));
    this.body.append(this.bodyText);
    this.el.append(this.summary, this.body);
    if (item.event === "reasoning_completed") this.complete();
    else {
      this.el.open = true;
      this.el.dataset.state = "thinking";
      this.label.textContent = "Thinking…";
    }
  }

  append(content) {
    this.bodyText.appendData(content);
  }

  complete() {
    this.el.dataset.state = "done";
    this.el.open = false;
    const took = this.startedAt === null ? "" : ` for ${formatDuration(performance.now() - this.startedAt)}`;
    this.label.textContent = `Thought${took}`;
  }
}

export class ToolCard {
  constructor(item) {
    this.el = el("div", "tool");
    const head = el("div", "tool-head");
    this.icon = el("span", "tool-icon");
    this.icon.setAttribute("aria-hidden", "true");
    this.status = el("span", "tool-status");
    this.result = el("div", "tool-result");
    head.append(this.icon, el("code", "tool-name", item.payload?.tool_name || "tool"), this.result, this.status);
    this.el.append(head);
    if (item.event === "tool_call_completed") this.complete(item.payload);
    else this.setState("running", "running…");
  }

  setState(state, label) {
    this.el.dataset.state = state;
    this.status.textContent = label;
  }

  complete(payload) {
    this.setState("done", "");
    this.result.textContent = toolResultText(payload?.tool_result);
  }

  /** The task ended while this call was still running. */
  interrupt() {
    if (this.el.dataset.state === "running") this.setState("stopped", "interrupted");
  }
}

export class Message {
  constructor(item, { open }) {
    this.source = text(item.payload);
    this.el = el("div", "message markdown");
    this.open = open;
    if (open) {
      this.el.dataset.state = "streaming";
      this.streamed = document.createTextNode(this.source);
      this.el.append(this.streamed);
    } else {
      setMarkdown(this.el, this.source);
    }
  }

  append(content) {
    this.source += content;
    if (this.open) this.streamed.appendData(content);
    else setMarkdown(this.el, this.source); // a late chunk after the paragraph was closed
  }

  /** The paragraph ended: render its Markdown once. */
  finish() {
    if (!this.open) return;
    this.open = false;
    delete this.el.dataset.state;
    setMarkdown(this.el, this.source);
  }
}

function parseJson(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

export class Component {
  constructor(item) {
    this.el = Component.build(item.payload || {});
  }

  replace(item) {
    const next = Component.build(item.payload || {});
    this.el.replaceWith(next);
    this.el = next;
  }

  static build(payload) {
    const type = String(payload.component_type || "component");
    const content = parseJson(payload.content);
    const card = el("article", "card component");
    card.dataset.componentType = type;
    const title = content && typeof content === "object" && typeof content.title === "string" ? content.title : "";
    if (type === "report" && content && typeof content.data === "string") {
      card.classList.add("report");
      card.append(el("div", "card-kicker", "Report"));
      if (title) card.append(el("h3", "card-title", title));
      const body = el("div", "markdown");
      setMarkdown(body, content.data);
      card.append(body);
      return card;
    }
    const chart = type === "filtered_line_chart" ? parseChart(content) : null;
    if (chart) {
      card.classList.add("chart-card");
      card.append(el("div", "card-kicker", "Chart"));
      if (title) card.append(el("h3", "card-title", title));
      card.append(lineChart(chart));
      return card;
    }
    // Unknown (or malformed) component: show what it carries, readably.
    card.classList.add("fallback");
    card.append(el("div", "card-kicker", type.replaceAll("_", " ")));
    if (title) card.append(el("h3", "card-title", title));
    const shown = content === undefined ? String(payload.content ?? "") : JSON.stringify(content, null, 2);
    card.append(el("pre", "fallback-body", shown));
    return card;
  }
}

export class Question {
  constructor(item, { pending }) {
    this.el = el("div", "question");
    this.el.setAttribute("role", "note");
    const head = el("div", "question-head");
    head.append(el("span", "question-icon", "?"), el("span", "question-title", "The agent needs your input"));
    this.badge = el("span", "question-badge", "answer below");
    head.append(this.badge);
    this.el.append(head, el("p", "question-text", text(item.payload)));
    this.setPending(pending);
  }

  setPending(pending) {
    this.el.dataset.state = pending ? "pending" : "answered";
    this.badge.hidden = !pending;
  }
}

export class Note {
  constructor(item, { kind }) {
    this.el = el("div", `note note-${kind}`);
    this.el.setAttribute("role", kind === "error" ? "alert" : "status");
    this.el.append(el("span", "note-icon", kind === "error" ? "!" : "i"), el("span", "note-text", text(item.payload)));
  }
}

const TASK_LABELS = {
  running: "Running",
  waiting: "Waiting for your answer",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** A task's progress line: state, elapsed time, tool calls; frozen once finished. */
export class TaskFooter {
  constructor(taskId, { state = "running", startedAt = Date.now(), finishedAt = null, toolCalls = 0, reason = "" } = {}) {
    this.taskId = taskId;
    this.startedAt = startedAt;
    this.finishedAt = finishedAt;
    this.toolCalls = toolCalls;
    this.el = el("div", "task");
    this.el.dataset.taskId = taskId;
    this.icon = el("span", "task-icon");
    this.icon.setAttribute("aria-hidden", "true");
    this.label = el("span", "task-label");
    this.label.setAttribute("role", "status"); // announces state changes, not the ticking clock
    this.elapsed = el("span", "task-elapsed");
    this.tools = el("span", "task-tools");
    this.reason = el("span", "task-reason");
    this.el.append(this.icon, this.label, this.elapsed, this.tools, this.reason);
    this.timer = null;
    this.set(state, reason);
  }

  get active() {
    return this.state === "running" || this.state === "waiting";
  }

  set(state, reason = "") {
    this.state = state;
    this.el.dataset.state = state;
    this.label.textContent = TASK_LABELS[state] || state;
    this.reason.textContent = reason;
    this.reason.hidden = !reason;
    if (!this.active && this.finishedAt === null) this.finishedAt = Date.now();
    clearInterval(this.timer);
    this.timer = state === "running" ? setInterval(() => this.render(), 100) : null;
    this.render();
  }

  addToolCall() {
    this.toolCalls++;
    this.render();
  }

  render() {
    const end = this.finishedAt ?? Date.now();
    this.elapsed.textContent = formatDuration(end - this.startedAt);
    this.tools.textContent = this.toolCalls ? plural(this.toolCalls, "tool call") : "";
    this.tools.hidden = !this.toolCalls;
  }
}
