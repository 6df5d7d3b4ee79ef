// A Server-Sent Events parser following the WHATWG "event stream" rules.
// Feed it decoded text as it arrives; it returns the complete events.
//
// Handles: LF, CRLF and CR line endings (also split across chunks), a leading
// BOM, comments (":" lines), multi-line `data`, `event`, `id` (kept across
// events, ignored when it contains NUL) and `retry` (digits only).

export class SseParser {
  constructor() {
    this.buffer = "";
    this.sawFirstChunk = false;
    this.pendingCR = false;
    this.lastEventId = "";
    this.retry = null;
    this.comments = 0;
    this.resetEvent();
  }

  resetEvent() {
    this.eventType = "";
    this.dataLines = [];
    this.hasData = false;
  }

  /** Parse `text`; return the events it completes, as {type, data, id}. */
  push(text) {
    if (!this.sawFirstChunk && text.length) {
      this.sawFirstChunk = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A CR at the end of the previous chunk may be the first half of a CRLF.
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text.startsWith("\n")) text = text.slice(1);
    }
    this.buffer += text;
    const events = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer[i];
      if (ch !== "\n" && ch !== "\r") continue;
      const line = this.buffer.slice(start, i);
      if (ch === "\r") {
        if (i + 1 === this.buffer.length) this.pendingCR = true;
        else if (this.buffer[i + 1] === "\n") i++;
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** End of stream: an event without its blank line is discarded (per the spec). */
  end() {
    this.buffer = "";
    this.pendingCR = false;
    this.resetEvent();
  }

  line(line) {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) {
      this.comments++;
      return null;
    }
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon !== -1) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "data":
        this.dataLines.push(value);
        this.hasData = true;
        break;
      case "event":
        this.eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = parseInt(value, 10);
        break;
      default:
        break; // unknown fields are ignored
    }
    return null;
  }

  dispatch() {
    if (!this.hasData) {
      this.resetEvent();
      return null;
    }
    const event = { type: this.eventType || "message", data: this.dataLines.join("\n"), id: this.lastEventId };
    this.resetEvent();
    return event;
  }
}
