// The JSON API as the page uses it: CSRF header, JSON errors as ApiError.
// Every call goes to the same origin with the session cookie.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(rest.join("="));
  }
  return "";
}

function headers(extra = {}) {
  return { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch", ...extra };
}

/** Turn a non-2xx response into an ApiError with the server's code and message. */
export async function errorFrom(response) {
  let code = "http_" + response.status;
  let message = `The server answered ${response.status}.`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the generic message
  }
  return new ApiError(response.status, code, message);
}

async function json(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

export const api = {
  agents: () => json("/agents"),
  conversations: () => json("/conversations"),
  conversation: (id) => json(`/conversations/${encodeURIComponent(id)}`),
  items: (id) => json(`/conversations/${encodeURIComponent(id)}/items`),
  cancel: (id) =>
    json(`/conversations/${encodeURIComponent(id)}/cancel`, { method: "POST", headers: headers() }),

  /** DELETE /conversations/<id> (204; 409 while a task runs or waits for an answer). */
  async remove(id) {
    const response = await fetch(`/conversations/${encodeURIComponent(id)}`, {
      method: "DELETE",
      credentials: "same-origin",
      headers: headers(),
    });
    if (!response.ok) throw await errorFrom(response);
  },

  /** POST /agents/stream; resolves to the open SSE response (or throws ApiError). */
  async startStream(body, signal) {
    const response = await fetch("/agents/stream", {
      method: "POST",
      credentials: "same-origin",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
      signal,
    });
    if (!response.ok) throw await errorFrom(response);
    return response;
  },

  /** GET /conversations/<id>/stream after `lastSeq` (the resume point); 204 when nothing is left to follow. */
  async resumeStream(id, lastSeq, signal) {
    const response = await fetch(`/conversations/${encodeURIComponent(id)}/stream`, {
      credentials: "same-origin",
      headers: { Accept: "text/event-stream", "Last-Event-ID": String(lastSeq) },
      cache: "no-store",
      signal,
    });
    if (!response.ok) throw await errorFrom(response);
    return response;
  },
};
