// Plain-language words for what the API names.
export const EFFECTS = {
  read: ["Reads", "Only looks things up; changes nothing."],
  write: ["Writes", "Creates or changes your files, documents or data."],
  send: ["Sends", "Sends something to other people (an email, an invitation)."],
  destructive: ["Deletes", "Can delete or overwrite data for good."],
};

// Google's classes of OAuth scopes (GraphQL's ScopeRisk)
export const RISKS = {
  NON_SENSITIVE: ["Not sensitive", "Basic access that reveals little about you."],
  SENSITIVE: ["Sensitive", "Access to your private data; Google asks you to confirm it."],
  RESTRICTED: ["Restricted", "Broad access to your mail or files; Google reviews apps that ask for it."],
};

export const FAMILIES = {
  files: "Files",
  google_workspace: "Google Workspace",
  postgres: "PostgreSQL",
  web: "Web",
  custom: "Your custom tools",
};

export function familyName(id) {
  return FAMILIES[id] || id;
}

export const STATUS = {
  queued: "Waiting to start",
  running: "Running",
  awaiting_approval: "Waiting for your approval",
  awaiting_authorization: "Waiting for a connection (Connect Google)",
  succeeded: "Finished",
  failed: "Failed",
  limit_exceeded: "Stopped at a limit",
  cancelled: "Cancelled",
};

export const TERMINAL = new Set(["succeeded", "failed", "limit_exceeded", "cancelled"]);
