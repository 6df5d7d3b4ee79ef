// The sidebar: the visitor's conversations, newest first, with title and status.
// Entries are real links (/?conversation=<id>) so they open in a new tab too;
// each has a delete button next to it.

import { api } from "./api.js";
import { el, relativeTime } from "./format.js";

const STATUS_LABELS = { running: "running", require_user_input: "needs input", idle: "idle" };

export class Sidebar {
  constructor(list, { onOpen, onDelete, onError }) {
    this.list = list;
    this.onOpen = onOpen;
    this.onDelete = onDelete;
    this.onError = onError;
    this.activeId = null;
    this.activeStatus = null;
    this.pending = null;
    this.again = false;
    this.conversations = [];
  }

  /** Reload the list. A call made while a request is in flight gets one more request after it. */
  refresh() {
    if (this.pending) {
      this.again = true;
      return this.pending;
    }
    this.pending = api
      .conversations()
      .then((body) => {
        this.conversations = body.conversations || [];
        this.render();
      })
      .catch((error) => this.onError(error))
      .finally(() => {
        this.pending = null;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
    return this.pending;
  }

  setActive(id) {
    this.activeId = id;
    this.activeStatus = null;
    for (const link of this.list.querySelectorAll("a[data-id]")) {
      if (link.dataset.id === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  /**
   * The open conversation's status as the page sees it (following its stream).
   * It wins over the list: the server records a status change a moment after
   * the event that announced it, so a list fetched in between would be stale.
   */
  setActiveStatus(status) {
    this.activeStatus = status;
    const link = this.activeId && this.list.querySelector(`a[data-id="${CSS.escape(this.activeId)}"]`);
    if (link) this.paintStatus(link, status);
  }

  paintStatus(link, status) {
    link.dataset.status = status;
    link.querySelector(".conv-status").textContent = STATUS_LABELS[status] || status;
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
        if (c.id === this.activeId) link.setAttribute("aria-current", "page");
        const meta = el("span", "conv-meta");
        meta.append(el("span", "conv-status"), el("span", "conv-time", relativeTime(c.updated_at, now)));
        link.append(el("span", "conv-title", c.title || "Untitled"), meta);
        this.paintStatus(link, c.id === this.activeId && this.activeStatus ? this.activeStatus : c.status);
        link.addEventListener("click", (event) => {
          if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
          event.preventDefault();
          this.onOpen(c.id);
        });
        const title = c.title || "Untitled";
        const remove = el("button", "conv-delete", "×");
        remove.type = "button";
        remove.dataset.id = c.id;
        remove.title = "Delete this conversation";
        remove.setAttribute("aria-label", `Delete “${title}”`);
        remove.addEventListener("click", () => this.onDelete(c.id, title));
        const item = el("li", "conv-item");
        item.append(link, remove);
        return item;
      }),
    );
  }
}
