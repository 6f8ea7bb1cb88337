// pasar's own API from the browser: REST and GraphQL with the session's bearer token. A 401
// spends the refresh token once; when that fails too the session is over (`onExpired`).
import { authHeaders, clearSession, readSession, saveSession } from "../session.js";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  // {"/name": "must not be blank", ...} from a VALIDATION_FAILED answer
  fieldErrors() {
    const found = {};
    for (const item of this.details.errors || []) found[item.path] ??= item.message;
    return found;
  }
}

export class SessionExpired extends Error {}

const listeners = { expired: () => {} };
export function onExpired(listener) {
  listeners.expired = listener;
}

async function send(method, path, body, headers = {}) {
  const options = { method, headers: { ...authHeaders(), ...headers } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, options);
  } catch {
    throw new ApiError(0, "NETWORK", "pasar could not be reached: check your connection and try again.");
  }
}

let refreshing = null;
async function refreshed() {
  const session = readSession();
  if (!session?.refresh_token) return false;
  refreshing ??= fetch("/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: session.refresh_token }),
  })
    .then(async (answer) => {
      if (!answer.ok) return false;
      saveSession({ ...session, ...(await answer.json()) });
      return true;
    })
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

async function authorized(method, path, body, headers) {
  let answer = await send(method, path, body, headers);
  if (answer.status === 401 && readSession()) {
    if (await refreshed()) answer = await send(method, path, body, headers);
    if (answer.status === 401) {
      clearSession();
      listeners.expired();
      throw new SessionExpired("Your session has ended: sign in again.");
    }
  }
  return answer;
}

async function parsed(answer) {
  if (answer.status === 204) return null;
  let body = null;
  try {
    body = await answer.json();
  } catch {
    body = null;
  }
  if (!answer.ok) {
    const error = body?.error || {};
    throw new ApiError(
      answer.status,
      error.code || "HTTP_" + answer.status,
      error.message || `pasar answered ${answer.status}.`,
      error.details,
    );
  }
  return body;
}

export async function api(method, path, body) {
  return parsed(await authorized(method, path, body));
}

// Sign-in and sign-up: no bearer token, and a 401 there is a wrong password, not an expiry.
export async function anonymous(method, path, body) {
  const answer = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }).catch(() => null);
  if (answer === null) throw new ApiError(0, "NETWORK", "pasar could not be reached.");
  return parsed(answer);
}

export async function graphql(query, variables = {}) {
  const answer = await authorized("POST", "/graphql", { query, variables });
  const body = await answer.json();
  if (body.errors?.length) {
    const first = body.errors[0];
    throw new ApiError(answer.status, first.extensions?.code || "GRAPHQL", first.message);
  }
  return body.data;
}

// A run's server-sent events after event `after` (fetch, not EventSource: it sends the
// Authorization header), until the server closes the stream; the caller resumes from the last id.
export async function* runEvents(executionId, after, signal) {
  const headers = after ? { "Last-Event-ID": String(after) } : {};
  const answer = await authorized("GET", `/executions/${executionId}/events`, undefined, headers);
  if (!answer.ok) await parsed(answer);
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  signal?.addEventListener("abort", () => reader.cancel());
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = { type: "message", id: null, data: "" };
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event.type = line.slice(7);
          else if (line.startsWith("id: ")) event.id = Number(line.slice(4));
          else if (line.startsWith("data: ")) event.data += line.slice(6);
        }
        if (event.data) yield { type: event.type, id: event.id, data: JSON.parse(event.data) };
      }
    }
  } catch (error) {
    if (!signal?.aborted && !(error instanceof TypeError)) throw error;
  }
}
