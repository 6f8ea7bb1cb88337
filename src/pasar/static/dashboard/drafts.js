// What a person typed, kept in sessionStorage until it is saved: a session that expires mid-form
// sends them to sign in and back to the same form, filled in as they left it. Signing out on
// purpose drops every draft (the next person at this tab must not find them).
const PREFIX = "pasar.draft.";

export function readDraft(name) {
  try {
    return JSON.parse(sessionStorage.getItem(PREFIX + name) || "null");
  } catch {
    return null;
  }
}

export function saveDraft(name, value) {
  sessionStorage.setItem(PREFIX + name, JSON.stringify(value));
}

export function dropDraft(name) {
  sessionStorage.removeItem(PREFIX + name);
}

export function dropAllDrafts() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
  }
}
