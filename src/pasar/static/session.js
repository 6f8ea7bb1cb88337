// The dashboard's session, shared by pasar's pages on this origin: kept in sessionStorage (this
// tab only, never a cookie, never in a URL) and sent as the Authorization header.
const KEY = "pasar.session";

export function readSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return session && typeof session.access_token === "string" ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

export function authHeaders(session = readSession()) {
  return session ? { Authorization: `Bearer ${session.access_token}` } : {};
}
