// API keys (created, shown once, revoked) and provider connections (health, disconnect).
import { api, SessionExpired } from "./api.js";
import { field, formatDate, h, replace, showFieldError } from "./dom.js";

function failed(target) {
  return (error) => {
    if (!(error instanceof SessionExpired)) replace(target, h("p", { class: "form-error", role: "alert" }, error.message));
  };
}

export function keysView() {
  const list = h("div", { "aria-live": "polite" }, "Loading...");
  const created = h("div", { "aria-live": "polite" });
  const name = field("Name", h("input", { name: "key_name", required: true, maxLength: 100 }), { hint: "Where you will use it, e.g. my laptop." });
  const days = field("Expires after (days)", h("input", { name: "expires_days", type: "number", min: 1, max: 3650 }), { hint: "Leave empty for a key that does not expire." });
  const problem = h("p", { class: "form-error", role: "alert" });

  function load() {
    api("GET", "/api-keys").then(({ api_keys: keys }) => {
      replace(list, keys.length ? h("ul", { class: "keys" }, keys.map((key) => h("li", { class: "card" },
        h("strong", {}, key.name), " ", h("code", {}, `${key.prefix}...`), " ",
        h("span", { class: `badge status-${key.status}` }, key.status),
        h("p", { class: "hint" }, `created ${formatDate(key.created_at)}`, key.expires_at ? ` · expires ${formatDate(key.expires_at)}` : "",
          key.last_used_at ? ` · last used ${formatDate(key.last_used_at)}` : ""),
        key.status === "active" ? h("button", { type: "button", class: "danger", onclick: async () => {
          await api("DELETE", `/api-keys/${key.id}`).catch(failed(problem));
          load();
        } }, `Revoke ${key.name}`) : null))) : h("p", {}, "No API keys yet."));
    }, failed(list));
  }

  async function onsubmit(event) {
    event.preventDefault();
    problem.textContent = "";
    for (const entry of [name, days]) showFieldError(entry, entry.input.validity.valid ? "" : entry.input.validationMessage);
    if (!name.input.validity.valid || !days.input.validity.valid) return;
    const body = { name: name.input.value.trim() };
    if (days.input.value) body.expires_in_s = Number(days.input.value) * 86400;
    try {
      const key = await api("POST", "/api-keys", body);
      replace(created, h("div", { class: "card ok" }, h("p", {}, "Your new key (shown only now: copy it somewhere safe):"), h("pre", { class: "secret" }, key.key)));
      name.input.value = "";
      load();
    } catch (error) {
      if (error instanceof SessionExpired) return;
      const fields = error.fieldErrors?.() || {};
      showFieldError(name, fields["/name"]);
      showFieldError(days, fields["/expires_in_s"]);
      if (!fields["/name"] && !fields["/expires_in_s"]) problem.textContent = error.message;
    }
  }

  load();
  return h("section", {}, h("h1", {}, "API keys"),
    h("p", { class: "lead" }, "For scripts and other programs: send the key as the X-API-Key header."),
    h("form", { novalidate: true, class: "card", onsubmit }, name.row, days.row, problem, h("button", { type: "submit", class: "primary" }, "Create key")),
    created, list);
}

const HEALTH = { ok: "Working", expired: "Expired (pasar refreshes it on the next run)", needs_reauth: "Needs you to connect again" };

export function connectionsView() {
  const list = h("div", { "aria-live": "polite" }, "Loading...");
  function load() {
    api("GET", "/connections").then(({ connections }) => {
      replace(list, connections.length ? h("ul", { class: "connections" }, connections.map((connection) => h("li", { class: "card" },
        h("h2", {}, connection.title, " ", h("span", { class: `badge health-${connection.health}` }, HEALTH[connection.health] || connection.health)),
        connection.account ? h("p", {}, `Account: ${connection.account}`) : null,
        h("p", { class: "hint" }, `${connection.scopes.length} permission(s) granted · connected ${formatDate(connection.created_at)}`),
        connection.last_error ? h("p", { class: "form-error" }, connection.last_error) : null,
        h("button", { type: "button", class: "danger", onclick: async () => {
          await api("DELETE", `/connections/${connection.provider}`).catch(failed(list));
          load();
        } }, `Disconnect ${connection.title}`)))) : h("p", {}, "No connections yet. An agent whose tools need Google shows a Connect Google button when you save it."));
    }, failed(list));
  }
  load();
  return h("section", {}, h("div", { class: "title-row" }, h("h1", {}, "Connections"), h("button", { type: "button", onclick: load }, "Check again")), list);
}
