// Following one conversation's event stream until its `done`, surviving drops.
// A broken stream is resumed from GET /conversations/<id>/stream with
// Last-Event-ID and exponential backoff; the caller de-duplicates by seq.

import { api, ApiError } from "./api.js";
import { SseParser } from "./sse.js";

const FIRST_DELAY_MS = 500;
const DEFAULT_CAP_MS = 5000;

/** Exponential backoff with ±20% jitter, capped by the server's `retry` advice. */
export function backoffDelay(attempt, capMs) {
  const cap = Math.max(1000, Math.min(30000, capMs ?? DEFAULT_CAP_MS));
  const delay = Math.min(cap, FIRST_DELAY_MS * 2 ** attempt);
  return Math.round(delay * (0.8 + Math.random() * 0.4));
}

export class ConversationStream {
  /**
   * @param {object} o
   * @param {string} o.conversationId
   * @param {() => number} o.lastSeq  the highest seq the page has applied
   * @param {(envelope: object) => void} o.onEvent
   * @param {(state: "live"|"reconnecting"|"closed", attempt?: number) => void} o.onConnection
   * @param {number} o.silenceMs  no bytes (not even a ping) for this long = a dead connection
   */
  constructor({ conversationId, lastSeq, onEvent, onConnection, silenceMs = 45000 }) {
    this.conversationId = conversationId;
    this.lastSeq = lastSeq;
    this.onEvent = onEvent;
    this.onConnection = onConnection;
    this.silenceMs = silenceMs;
    this.retryMs = null;
    this.stopped = false;
    this.attempt = null; // AbortController of the current connection
    this.wake = null;
    this.onOffline = () => this.attempt?.abort();
    this.onOnline = () => this.wake?.();
  }

  /** Stop following (the run goes on on the server). */
  stop() {
    this.stopped = true;
    this.attempt?.abort();
    this.wake?.();
  }

  /**
   * Follow until `done`. `response` is an already open stream (the POST's).
   * Resolves to "done", "ended" (no run in progress), "stopped", or throws ApiError.
   */
  async run(response = null) {
    window.addEventListener("offline", this.onOffline);
    window.addEventListener("online", this.onOnline);
    try {
      return await this.loop(response);
    } finally {
      window.removeEventListener("offline", this.onOffline);
      window.removeEventListener("online", this.onOnline);
      this.onConnection("closed");
    }
  }

  async loop(response) {
    let failures = 0;
    while (!this.stopped) {
      const controller = new AbortController();
      this.attempt = controller;
      const resumed = response === null;
      let received = 0;
      try {
        if (navigator.onLine === false) throw new Error("offline");
        if (resumed) response = await api.resumeStream(this.conversationId, this.lastSeq(), controller.signal);
        // 204: nothing after our last seq and no run in progress.
        if (response.status === 204) return "ended";
        this.onConnection("live");
        const outcome = await this.read(response, controller, () => {
          received++;
          failures = 0;
        });
        if (outcome === "done") return "done";
        // A clean end without `done`: a resume that brought nothing means no run is in progress.
        if (resumed && received === 0) return "ended";
      } catch (error) {
        if (this.stopped) return "stopped";
        if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
          throw error; // not found, forbidden…: retrying cannot help
        }
      } finally {
        response = null;
        this.attempt = null;
      }
      if (this.stopped) break;
      this.onConnection("reconnecting", failures + 1);
      await this.sleep(backoffDelay(failures++, this.retryMs));
    }
    return "stopped";
  }

  async read(response, controller, onProgress) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), this.silenceMs);
    };
    const onAbort = () => reader.cancel().catch(() => {});
    controller.signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        arm();
        const { value, done } = await reader.read();
        if (controller.signal.aborted) throw new DOMException("aborted", "AbortError");
        if (done) {
          parser.end();
          return "eof";
        }
        for (const event of parser.push(value)) {
          if (parser.retry !== null) this.retryMs = parser.retry;
          if (this.stopped) return "stopped";
          let envelope;
          try {
            envelope = JSON.parse(event.data);
          } catch {
            continue; // not an envelope: nothing to show
          }
          onProgress();
          this.onEvent(envelope);
          if (envelope.event === "done") return "done";
        }
        if (parser.retry !== null) this.retryMs = parser.retry;
      }
    } finally {
      clearTimeout(watchdog);
      controller.signal.removeEventListener("abort", onAbort);
      reader.cancel().catch(() => {});
    }
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
