// The tool catalogue: every installed tool in plain words, searchable and filtered by family and
// effect; Google tools list the permissions they ask for and how sensitive each is.
import { api, graphql } from "./api.js";
import { field, h, replace } from "./dom.js";
import { EFFECTS, RISKS, familyName } from "./labels.js";

const SCOPES_QUERY = `query Scopes($tools: [String!]!) {
  compileScopes(tools: $tools) { provider scopes { scope risk description tools } }
}`;

// tools and the permission (scope) details of those that need a provider's consent
export async function loadCatalogue() {
  const { tools } = await api("GET", "/tools");
  const needing = tools.filter((tool) => tool.scopes.length).map((tool) => tool.id);
  const scopes = {};
  if (needing.length) {
    const data = await graphql(SCOPES_QUERY, { tools: needing });
    for (const plan of data.compileScopes) for (const scope of plan.scopes) scopes[scope.scope] = scope;
  }
  return { tools, scopes };
}

export function effectBadge(effect) {
  const [word, meaning] = EFFECTS[effect] || [effect, ""];
  return h("span", { class: `badge effect-${effect}`, title: meaning }, word);
}

export function permissionList(tool, scopes) {
  if (!tool.scopes.length) return null;
  return h(
    "div",
    { class: "permissions" },
    h("p", { class: "permissions-title" }, `Asks ${tool.auth_provider === "google" ? "Google" : tool.auth_provider} for:`),
    h(
      "ul",
      {},
      tool.scopes.map((scope) => {
        const known = scopes[scope] || {};
        const [risk, meaning] = RISKS[known.risk] || ["Unknown", ""];
        return h(
          "li",
          {},
          h("span", {}, known.description || scope),
          " ",
          h("span", { class: `badge risk-${(known.risk || "unknown").toLowerCase()}`, title: meaning }, risk),
        );
      }),
    ),
  );
}

// The first sentence in plain view; the rest (written for the model: limits, formats) on request.
export function firstSentence(description) {
  const end = description.search(/[.!?](\s|$)/);
  return end < 0 ? description : description.slice(0, end + 1);
}

function describe(description) {
  const first = firstSentence(description);
  const rest = description.slice(first.length).trim();
  return h("div", { class: "description" }, h("p", {}, first),
    rest ? h("details", {}, h("summary", {}, "Details"), h("p", {}, rest)) : null);
}

export function catalogueView() {
  const list = h("div", { class: "catalogue-list", "aria-live": "polite" }, "Loading the tools...");
  const search = field("Search", h("input", { type: "search", placeholder: "e.g. email, spreadsheet, web page" }));
  const family = field("Family", h("select", {}, h("option", { value: "" }, "All families")));
  const effect = field(
    "What it does",
    h(
      "select",
      {},
      h("option", { value: "" }, "Anything"),
      Object.entries(EFFECTS).map(([id, [word, meaning]]) => h("option", { value: id }, `${word}: ${meaning}`)),
    ),
  );
  let catalogue = null;

  function render() {
    const words = search.input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = catalogue.tools.filter((tool) => {
      if (family.input.value && tool.family !== family.input.value) return false;
      if (effect.input.value && tool.effect !== effect.input.value) return false;
      const text = [tool.id, tool.title, tool.description, familyName(tool.family),
        ...tool.scopes.map((s) => catalogue.scopes[s]?.description || s)].join(" ").toLowerCase();
      return words.every((word) => text.includes(word));
    });
    const families = [...new Set(shown.map((tool) => tool.family))];
    replace(
      list,
      h("p", { class: "count", role: "status" }, `${shown.length} of ${catalogue.tools.length} tools`),
      families.map((id) =>
        h(
          "section",
          { class: "family", "aria-label": familyName(id) },
          h("h2", {}, familyName(id)),
          h(
            "ul",
            { class: "tools" },
            shown
              .filter((tool) => tool.family === id)
              .map((tool) =>
                h(
                  "li",
                  { class: "tool card" },
                  h("h3", {}, tool.title, " ", effectBadge(tool.effect)),
                  describe(tool.description),
                  h("p", { class: "tool-id" }, h("code", {}, tool.id)),
                  permissionList(tool, catalogue.scopes),
                ),
              ),
          ),
        ),
      ),
    );
  }

  loadCatalogue().then(
    (loaded) => {
      catalogue = loaded;
      const families = [...new Set(loaded.tools.map((tool) => tool.family))];
      family.input.append(...families.map((id) => h("option", { value: id }, familyName(id))));
      render();
    },
    (error) => replace(list, h("p", { class: "form-error", role: "alert" }, error.message)),
  );
  for (const entry of [search, family, effect]) entry.input.addEventListener("input", () => catalogue && render());

  return h(
    "section",
    { "aria-labelledby": "catalogue-title" },
    h("div", { class: "title-row" }, h("h1", { id: "catalogue-title" }, "Tool catalogue"),
      h("a", { class: "button", href: "#/tools/new" }, "Register a custom tool")),
    h("p", { class: "lead" }, "The tools your agents can use. Tick them when you create an agent."),
    h("div", { class: "filters" }, search.row, family.row, effect.row),
    list,
  );
}
