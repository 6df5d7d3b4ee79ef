// The chat page's entry point: wires sidebar, transcript, composer and streams.
// State is small: the open conversation, its stream (if following) and the mode.

import { api, ApiError } from "./api.js";
import { Composer } from "./composer.js";
import { el } from "./format.js";
import { Sidebar } from "./sidebar.js";
import { ConversationStream } from "./stream.js";
import { Transcript } from "./transcript.js";

const config = JSON.parse(document.getElementById("chat-config").textContent);
const $ = (selector) => document.querySelector(selector);

class ChatApp {
  constructor() {
    this.scroller = $("#scroller");
    this.empty = $("#empty");
    this.banner = $("#connection");
    this.layout = $("#layout");
    this.menuButton = $("#menu-button");
    this.conversationId = null;
    this.stream = null;
    this.opening = 0;

    this.transcript = new Transcript($("#transcript"), {
      onConversationStarted: () => this.sidebar.refresh(),
      onQuestion: () => this.syncMode(),
      onTaskState: (footer) => {
        if (!footer.active) this.sidebar.refresh();
        this.syncMode();
      },
      onDone: () => {},
    });
    this.sidebar = new Sidebar($("#conversations"), {
      onOpen: (id) => this.open(id, { push: true }),
      onDelete: (id, title) => this.remove(id, title),
      onError: (error) => this.reportError(error),
    });
    this.composer = new Composer($("#composer"), {
      onSend: (query, agent) => this.send(query, agent),
      onStop: () => this.stop(),
    });

    $("#new-chat").addEventListener("click", () => this.newChat({ push: true }));
    this.menuButton.addEventListener("click", () => this.toggleDrawer());
    $("#backdrop").addEventListener("click", () => this.toggleDrawer(false));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.layout.dataset.drawer === "open") this.toggleDrawer(false);
    });
    for (const chip of document.querySelectorAll("[data-suggestion]")) {
      chip.addEventListener("click", () => this.send(chip.dataset.suggestion, this.composer.agent.value));
    }
    window.addEventListener("popstate", () => {
      const id = conversationFromUrl();
      if (id) this.open(id, { push: false });
      else this.newChat({ push: false });
    });
    window.addEventListener("focus", () => this.sidebar.refresh());
  }

  async start() {
    this.composer.setMode("ask");
    const agents = this.composer.loadAgents(config.defaultAgent).catch((error) => this.reportError(error));
    const sidebar = this.sidebar.refresh();
    if (config.conversationId) await this.open(config.conversationId, { push: false });
    else this.newChat({ push: false });
    await Promise.all([agents, sidebar]);
    document.body.dataset.ready = "true";
  }

  // --- navigation ---------------------------------------------------------
  stopFollowing() {
    this.stream?.stop();
    this.stream = null;
    this.setConnection("closed");
  }

  newChat({ push }) {
    this.opening++;
    this.stopFollowing();
    this.conversationId = null;
    this.transcript.clear();
    this.empty.hidden = false;
    this.sidebar.setActive(null);
    this.composer.showError("");
    this.syncMode();
    if (push) history.pushState({}, "", "/");
    document.title = config.siteName;
    this.toggleDrawer(false);
    this.composer.focus();
  }

  async open(id, { push }) {
    const ticket = ++this.opening;
    this.stopFollowing();
    this.conversationId = id;
    this.transcript.clear();
    this.empty.hidden = true;
    this.sidebar.setActive(id);
    this.composer.showError("");
    this.toggleDrawer(false);
    if (push) history.pushState({}, "", conversationUrl(id));
    let history_, detail;
    try {
      [history_, detail] = await Promise.all([api.items(id), api.conversation(id)]);
    } catch (error) {
      if (ticket !== this.opening) return;
      this.conversationId = null;
      this.syncMode();
      this.showPaneMessage(
        error instanceof ApiError && error.status === 404
          ? "This conversation does not exist, or it belongs to someone else."
          : error.message,
      );
      return;
    }
    if (ticket !== this.opening) return;
    this.transcript.load(history_, detail.tasks || []);
    this.composer.selectAgent(detail.conversation?.agent_name);
    document.title = `${detail.conversation?.title || "Conversation"} · ${config.siteName}`;
    this.scrollToBottom();
    this.composer.focus();
    if (history_.status === "running") this.follow(null);
    else this.syncMode();
  }

  async remove(id, title) {
    if (!window.confirm(`Delete “${title}”? Its messages cannot be recovered.`)) return;
    try {
      await api.remove(id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        this.reportError(error); // 409: a task still runs or waits for an answer
        return;
      }
    }
    if (id === this.conversationId) this.newChat({ push: true });
    await this.sidebar.refresh();
  }

  // --- runs ---------------------------------------------------------------
  async send(query, agentName) {
    if (this.stream || this.composer.busy) return;
    const answering = Boolean(this.transcript.pendingQuestion && this.conversationId);
    const body = answering
      ? { query, conversation_id: this.conversationId }
      : { query, agent_name: agentName || undefined, conversation_id: this.conversationId || undefined };
    this.composer.setBusy(true);
    this.composer.showError("");
    let response;
    try {
      response = await api.startStream(body);
    } catch (error) {
      this.composer.setBusy(false);
      this.composer.showError(
        error instanceof ApiError ? error.message : "Could not reach the server. Check your connection and try again.",
      );
      this.composer.setText(query);
      return;
    }
    const id = response.headers.get("X-Conversation-Id");
    if (id && id !== this.conversationId) {
      this.opening++;
      this.conversationId = id;
      this.transcript.clear();
      history.pushState({}, "", conversationUrl(id));
      this.sidebar.setActive(id);
      document.title = `${query.trim().slice(0, 60)} · ${config.siteName}`;
    }
    this.empty.hidden = true;
    this.composer.setBusy(false);
    this.composer.clear();
    this.follow(response);
  }

  async follow(response) {
    const stream = new ConversationStream({
      conversationId: this.conversationId,
      lastSeq: () => this.transcript.lastSeq,
      onEvent: (envelope) => this.apply(envelope),
      // A stream that was replaced (another conversation opened) no longer owns the banner.
      onConnection: (state, attempt) => this.stream === stream && this.setConnection(state, attempt),
      silenceMs: config.silenceMs,
    });
    this.stream = stream;
    this.syncMode();
    let outcome;
    try {
      outcome = await stream.run(response);
    } catch (error) {
      outcome = "failed";
      if (this.stream === stream) this.reportError(error);
    }
    if (this.stream !== stream) return; // another conversation took over
    this.stream = null;
    this.transcript.closeParagraph();
    this.syncMode();
    this.sidebar.refresh();
    if (outcome !== "stopped" && (document.activeElement === document.body || this.composer.form.contains(document.activeElement))) {
      this.composer.focus();
    }
  }

  apply(envelope) {
    const stick = this.nearBottom();
    this.transcript.apply(envelope);
    if (stick) this.scrollToBottom();
  }

  /** Stop the running task, or the task whose question waits for an answer. */
  async stop() {
    const id = this.conversationId;
    const waiting = !this.stream && Boolean(this.transcript.pendingQuestion);
    if (!id || (!this.stream && !waiting)) return;
    this.composer.setBusy(true);
    try {
      await api.cancel(id);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "not_running")) this.reportError(error);
      return;
    } finally {
      this.composer.setBusy(false);
    }
    if (waiting) await this.followCancellation(id);
  }

  /**
   * A waiting task ends (task_cancelled, done) a moment after the cancel was
   * accepted, and a resume that finds no run in progress ends at once: resume
   * until those events arrive (bounded).
   */
  async followCancellation(id) {
    const before = this.transcript.lastSeq;
    for (let attempt = 0; attempt < 20; attempt++) {
      if (this.conversationId !== id || this.stream) return;
      await this.follow(null);
      if (this.transcript.lastSeq !== before) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** Composer mode and the sidebar's status of the open conversation, from what the page knows. */
  syncMode() {
    let status = "idle";
    if (this.stream) {
      this.composer.setMode("running");
      status = "running";
    } else if (this.transcript.pendingQuestion) {
      const question = this.transcript.pendingQuestion.el.querySelector(".question-text").textContent;
      this.composer.setMode("answer", question);
      status = "require_user_input";
    } else this.composer.setMode("ask");
    if (this.conversationId) this.sidebar.setActiveStatus(status);
  }

  // --- presentation ---------------------------------------------------------
  setConnection(state, attempt) {
    const reconnecting = state === "reconnecting";
    this.banner.hidden = !reconnecting;
    this.banner.querySelector(".connection-attempt").textContent = reconnecting && attempt > 1 ? `attempt ${attempt}` : "";
  }

  showPaneMessage(message) {
    this.transcript.clear();
    this.empty.hidden = true;
    const note = el("div", "note note-error");
    note.setAttribute("role", "alert");
    note.append(el("span", "note-icon", "!"), el("span", "note-text", message));
    this.transcript.root.append(note);
  }

  reportError(error) {
    if (error instanceof ApiError && error.code === "authentication_required") {
      this.composer.showError("Please sign in to chat.");
      return;
    }
    this.composer.showError(error?.message || String(error));
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  toggleDrawer(open) {
    const next = open ?? this.layout.dataset.drawer !== "open";
    const wasOpen = this.layout.dataset.drawer === "open";
    this.layout.dataset.drawer = next ? "open" : "closed";
    this.menuButton.setAttribute("aria-expanded", String(next));
    if (next) ($("#conversations a[aria-current]") || $("#new-chat")).focus();
    else if (wasOpen) this.menuButton.focus();
  }
}

const conversationUrl = (id) => `/?conversation=${encodeURIComponent(id)}`;

function conversationFromUrl() {
  return new URLSearchParams(location.search).get("conversation") || null;
}

new ChatApp().start();
