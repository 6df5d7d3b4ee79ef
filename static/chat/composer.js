// The composer: query box, agent picker, Send/Stop button (and, while a question
// waits for an answer, a button that stops the task instead) and an error line.
// Enter sends, Shift+Enter makes a new line; its mode follows the run.

import { api } from "./api.js";
import { el } from "./format.js";

const PLACEHOLDERS = {
  ask: "Ask about AAPL, MSFT, NVDA, GOOGL, AMZN or TSLA…",
  answer: "Type your answer to the agent's question…",
  running: "The agent is working — you can type your next message…",
};

export class Composer {
  constructor(form, { onSend, onStop }) {
    this.form = form;
    this.input = form.querySelector("textarea");
    this.agent = form.querySelector("select");
    this.button = form.querySelector("button[type=submit]");
    this.buttonLabel = this.button.querySelector(".send-label");
    this.stopQuestion = form.querySelector(".stop-question");
    this.hint = form.querySelector(".composer-hint");
    this.error = form.querySelector(".composer-error");
    this.onSend = onSend;
    this.onStop = onStop;
    this.mode = "ask";
    this.busy = false;

    this.stopQuestion.addEventListener("click", () => {
      if (!this.busy) this.onStop();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => {
      this.autosize();
      this.showError("");
      this.sync();
    });
  }

  async loadAgents(preferred) {
    const body = await api.agents();
    const agents = body.agents || [];
    this.agent.replaceChildren(
      ...agents.map((a) => {
        const option = el("option", "", a.name);
        option.value = a.name;
        option.title = a.description || "";
        return option;
      }),
    );
    if (preferred && agents.some((a) => a.name === preferred)) this.agent.value = preferred;
  }

  selectAgent(name) {
    if (name && [...this.agent.options].some((o) => o.value === name)) this.agent.value = name;
  }

  submit() {
    if (this.mode === "running") {
      this.onStop();
      return;
    }
    const query = this.input.value;
    if (!query.trim() || this.busy) return;
    this.onSend(query, this.agent.value);
  }

  /** "ask" (new run), "answer" (reply to a question) or "running" (Stop). */
  setMode(mode, question = "") {
    this.mode = mode;
    this.form.dataset.mode = mode;
    this.input.placeholder = PLACEHOLDERS[mode];
    this.agent.disabled = mode !== "ask";
    this.hint.textContent = mode === "answer" && question ? `Answering: ${question}` : "";
    this.hint.hidden = !this.hint.textContent;
    this.sync();
  }

  setBusy(busy) {
    this.busy = busy;
    this.sync();
  }

  sync() {
    const stop = this.mode === "running";
    this.button.dataset.action = stop ? "stop" : "send";
    this.buttonLabel.textContent = stop ? "Stop" : this.mode === "answer" ? "Answer" : "Send";
    this.button.setAttribute("aria-label", stop ? "Stop the running task" : "Send");
    this.button.disabled = this.busy || (!stop && !this.input.value.trim());
    this.stopQuestion.hidden = this.mode !== "answer";
    this.stopQuestion.disabled = this.busy;
  }

  clear() {
    this.input.value = "";
    this.autosize();
    this.sync();
  }

  setText(text) {
    this.input.value = text;
    this.autosize();
    this.sync();
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 240)}px`;
  }
}
