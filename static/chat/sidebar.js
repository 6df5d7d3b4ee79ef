// The sidebar: the visitor's conversations, newest first, with title and status.
// Entries are real links (/?conversation=<id>) so they open in a new tab too.

import { api } from "./api.js";
import { el, relativeTime } from "./format.js";

const STATUS_LABELS = { running: "running", require_user_input: "needs input", idle: "idle" };

export class Sidebar {
  constructor(list, { onOpen, onError }) {
    this.list = list;
    this.onOpen = onOpen;
    this.onError = onError;
    this.activeId = null;
    this.pending = null;
    this.conversations = [];
  }

  /** Reload the list; concurrent calls share one request. */
  refresh() {
    this.pending ??= api
      .conversations()
      .then((body) => {
        this.conversations = body.conversations || [];
        this.render();
      })
      .catch((error) => this.onError(error))
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  setActive(id) {
    this.activeId = id;
    for (const link of this.list.querySelectorAll("a[data-id]")) {
      if (link.dataset.id === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  render() {
    if (!this.conversations.length) {
      this.list.replaceChildren(el("li", "sidebar-empty", "No conversations yet."));
      return;
    }
    const now = Date.now();
    this.list.replaceChildren(
      ...this.conversations.map((c) => {
        const link = el("a", "conv");
        link.href = `/?conversation=${encodeURIComponent(c.id)}`;
        link.dataset.id = c.id;
        link.dataset.status = c.status;
        if (c.id === this.activeId) link.setAttribute("aria-current", "page");
        const meta = el("span", "conv-meta");
        const status = el("span", "conv-status", STATUS_LABELS[c.status] || c.status);
        meta.append(status, el("span", "conv-time", relativeTime(c.updated_at, now)));
        link.append(el("span", "conv-title", c.title || "Untitled"), meta);
        link.addEventListener("click", (event) => {
          if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
          event.preventDefault();
          this.onOpen(c.id);
        });
        const item = el("li");
        item.append(link);
        return item;
      }),
    );
  }
}
