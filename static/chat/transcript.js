// The conversation pane: rebuilt from history items, then grown by live events.
// Items are keyed by item_id; events at or below the last applied seq are ignored.

import { Component, Message, Note, Question, Reasoning, TaskFooter, ToolCard, UserTurn } from "./views.js";

const FINISHED = { task_completed: "done", task_failed: "failed", task_cancelled: "cancelled" };
const TASK_STATES = { running: "running", waiting_input: "waiting", completed: "done", failed: "failed", cancelled: "cancelled", pending: "running" };
const NOTES = { plan_failed: "error", system_failed: "error", task_failed: "error", message: "info" };

export class Transcript {
  /**
   * @param {HTMLElement} root  the list that holds the conversation
   * @param {object} hooks  onQuestion(text), onTaskState(footer), onConversationStarted(id), onDone()
   */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.clear();
  }

  clear() {
    for (const task of this.tasks?.values() ?? []) clearInterval(task.timer);
    this.root.replaceChildren();
    this.items = new Map();
    this.tasks = new Map();
    this.activeTask = null;
    this.openMessage = null;
    this.pendingQuestion = null;
    this.lastSeq = 0;
    this.root.dataset.lastSeq = "0";
  }

  insert(view) {
    this.root.insertBefore(view.el, this.activeTask?.el ?? null);
  }

  /** Rebuild from `GET /conversations/<id>/items` (+ the detail's tasks). */
  load(history, tasks = []) {
    this.clear();
    const running = history.status === "running";
    const items = history.items;
    items.forEach((item, index) => {
      const last = index === items.length - 1;
      const view = this.viewFor(item, {
        live: false,
        open: running && last && item.event === "message_chunk",
        pending: history.status === "require_user_input" && item.event === "plan_require_user_input" && last,
      });
      if (!view) return;
      this.items.set(item.item_id, view);
      view.taskId = item.task_id || "";
      view.threadId = item.thread_id || "";
      this.root.append(view.el);
      if (view instanceof Message && view.open) this.openMessage = view;
      if (view instanceof Question && history.status === "require_user_input") this.pendingQuestion = view;
    });
    for (const task of tasks) this.placeTask(task);
    this.setSeq(history.last_seq || 0);
    if (this.pendingQuestion) this.hooks.onQuestion(this.pendingQuestion.el.querySelector(".question-text").textContent);
  }

  placeTask(task) {
    const views = [...this.items.values()].filter((v) => v.taskId === task.id);
    const state = TASK_STATES[task.status] || "done";
    const footer = new TaskFooter(task.id, {
      state,
      startedAt: Date.parse(task.started_at || task.created_at),
      finishedAt: task.finished_at ? Date.parse(task.finished_at) : null,
      toolCalls: views.filter((v) => v instanceof ToolCard).length,
      reason: state === "cancelled" ? task.error : "",
    });
    this.tasks.set(task.id, footer);
    if (footer.active) {
      this.root.append(footer.el);
      this.activeTask = footer;
      this.hooks.onTaskState(footer);
      return;
    }
    for (const view of views) if (view instanceof ToolCard) view.interrupt();
    const thread = [...this.items.values()].find((v) => v instanceof UserTurn && v.threadId === task.thread_id);
    const anchor = views.length ? views[views.length - 1].el : thread?.el;
    if (anchor) anchor.after(footer.el);
    else this.root.append(footer.el);
  }

  setSeq(seq) {
    this.lastSeq = seq;
    this.root.dataset.lastSeq = String(seq);
  }

  viewFor(item, flags) {
    switch (item.event) {
      case "thread_started":
        return new UserTurn(item);
      case "reasoning_started":
      case "reasoning":
      case "reasoning_completed":
        return new Reasoning(item, flags);
      case "tool_call_started":
      case "tool_call_completed":
        return new ToolCard(item);
      case "message_chunk":
        return new Message(item, flags);
      case "component_generator":
        return new Component(item);
      case "plan_require_user_input":
        return new Question(item, flags);
      default:
        return NOTES[item.event] ? new Note(item, { kind: NOTES[item.event] }) : null;
    }
  }

  /** Apply one live envelope (`{event, data, seq}`); stale seqs are dropped. */
  apply(envelope) {
    if (typeof envelope?.seq !== "number" || envelope.seq <= this.lastSeq) return;
    this.setSeq(envelope.seq);
    const { event, data = {} } = envelope;
    const itemId = data.item_id;
    const existing = itemId ? this.items.get(itemId) : undefined;

    if (!(event === "message_chunk" && existing === this.openMessage && existing)) this.closeParagraph();

    switch (event) {
      case "conversation_started":
        return this.hooks.onConversationStarted(data.conversation_id);
      case "thread_started":
        if (this.pendingQuestion) {
          this.pendingQuestion.setPending(false);
          this.pendingQuestion = null;
        }
        if (this.activeTask?.state === "waiting") {
          this.activeTask.set("running");
          this.hooks.onTaskState(this.activeTask);
        }
        return this.add(data, event);
      case "task_started":
        return this.startTask(data.task_id);
      case "task_completed":
      case "task_failed":
      case "task_cancelled":
        if (event === "task_failed") this.add(data, event);
        return this.finishTask(data.task_id, FINISHED[event], event === "task_cancelled" ? data.payload?.content : "");
      case "done":
        return this.hooks.onDone();
      case "reasoning_started":
      case "reasoning":
        if (existing) return existing.append(data.payload?.content || "");
        return this.add(data, "reasoning", { live: true });
      case "reasoning_completed":
        if (existing) return existing.complete();
        return this.add(data, event);
      case "tool_call_started":
        if (existing) return;
        this.tasks.get(data.task_id)?.addToolCall();
        return this.add(data, event);
      case "tool_call_completed":
        if (existing) return existing.complete(data.payload);
        return this.add(data, event);
      case "message_chunk":
        if (existing) return existing.append(data.payload?.content || "");
        this.openMessage = this.add(data, event, { open: true });
        return;
      case "component_generator":
        if (existing) return existing.replace(this.itemFrom(data, event));
        return this.add(data, event);
      case "plan_require_user_input": {
        this.pendingQuestion = this.add(data, event, { pending: true });
        if (this.activeTask) {
          this.activeTask.set("waiting");
          this.hooks.onTaskState(this.activeTask);
        }
        return this.hooks.onQuestion(data.payload?.content || "");
      }
      default:
        if (itemId && !existing) this.add(data, event);
    }
  }

  itemFrom(data, event) {
    return { item_id: data.item_id, event, payload: data.payload || {}, task_id: data.task_id || "" };
  }

  add(data, event, flags = {}) {
    if (!data.item_id) return null;
    const view = this.viewFor(this.itemFrom(data, event), { live: true, open: false, pending: false, ...flags });
    if (!view) return null;
    view.taskId = data.task_id || "";
    this.items.set(data.item_id, view);
    this.insert(view);
    return view;
  }

  closeParagraph() {
    this.openMessage?.finish();
    this.openMessage = null;
  }

  startTask(taskId) {
    if (!taskId || this.tasks.has(taskId)) return;
    const footer = new TaskFooter(taskId);
    this.tasks.set(taskId, footer);
    this.root.append(footer.el);
    this.activeTask = footer;
    this.hooks.onTaskState(footer);
  }

  finishTask(taskId, state, reason) {
    const footer = this.tasks.get(taskId);
    if (this.pendingQuestion && this.pendingQuestion.taskId === taskId) {
      // Stopped (or timed out) while waiting: the question is no longer open.
      this.pendingQuestion.setPending(false);
      this.pendingQuestion = null;
    }
    for (const view of this.items.values()) if (view.taskId === taskId && view instanceof ToolCard) view.interrupt();
    for (const view of this.items.values()) if (view.taskId === taskId && view instanceof Reasoning && view.el.dataset.state === "thinking") view.complete();
    if (!footer) return;
    footer.set(state, reason || "");
    if (this.activeTask === footer) this.activeTask = null;
    this.hooks.onTaskState(footer);
  }

  get isEmpty() {
    return this.items.size === 0;
  }
}
