// Small formatting helpers shared by the transcript and the sidebar.
// Durations, relative times, and element construction with text only.

/** Create an element with a class and optional text (always as textContent). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  const seconds = ms / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = Math.round(seconds % 60);
  return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
}

export function relativeTime(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return "";
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days < 7) return `${days} d ago`;
  return new Date(then).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A tool result is the JSON string `[{"content": "..."}]`; anything else is shown as is. */
export function toolResultText(result) {
  if (result === undefined || result === null) return "";
  try {
    const parsed = JSON.parse(result);
    if (Array.isArray(parsed) && parsed.every((part) => part && typeof part === "object" && "content" in part)) {
      return parsed.map((part) => (typeof part.content === "string" ? part.content : JSON.stringify(part.content))).join("\n");
    }
  } catch {
    // not JSON: plain text
  }
  return String(result);
}
