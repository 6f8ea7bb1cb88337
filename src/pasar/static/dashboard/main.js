// pasar's dashboard: plain modules talking to pasar's own REST and GraphQL API. Hash routes;
// the session lives in sessionStorage; an expired session shows sign-in over the same route
// (what was typed is kept as a draft) and comes back to it.
import { onExpired } from "./api.js";
import { authView } from "./auth.js";
import { agentsView, agentView } from "./agents.js";
import { agentFormView } from "./agent_form.js";
import { catalogueView } from "./catalogue.js";
import { connectionsView, keysView } from "./account.js";
import { customToolView } from "./custom_tool.js";
import { h, replace } from "./dom.js";
import { dropAllDrafts } from "./drafts.js";
import { runView } from "./run.js";
import { clearSession, readSession } from "../session.js";

const app = document.getElementById("app");
const ROUTES = [
  [/^#\/catalogue$/, () => catalogueView()],
  [/^#\/tools\/new$/, () => customToolView()],
  [/^#\/agents\/new$/, () => agentFormView({ agentId: null, navigate })],
  [/^#\/agents\/([\w-]+)\/edit$/, ([id]) => agentFormView({ agentId: id, navigate })],
  [/^#\/agents\/([\w-]+)$/, ([id]) => agentView({ agentId: id, navigate })],
  [/^#\/runs\/([\w-]+)$/, ([id]) => runView({ executionId: id })],
  [/^#\/keys$/, () => keysView()],
  [/^#\/connections$/, () => connectionsView()],
  [/^(#\/?(agents)?)?$/, () => agentsView()],
];
const NAV = [["#/agents", "Agents"], ["#/catalogue", "Catalogue"], ["#/connections", "Connections"], ["#/keys", "API keys"]];
let current = null;

function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function header(session) {
  const here = location.hash || "#/agents";
  return h("header", { class: "top" },
    h("a", { class: "brand", href: "#/agents" }, "pasar"),
    h("nav", { "aria-label": "Main" }, h("ul", {},
      NAV.map(([href, label]) => h("li", {}, h("a", { href, "aria-current": here.startsWith(href) ? "page" : null }, label))),
      h("li", {}, h("a", { href: "/graphql" }, "GraphQL playground")),
      h("li", {}, h("a", { href: "/docs" }, "API docs")))),
    h("div", { class: "who" }, h("span", {}, session.email || ""), " ",
      h("button", { type: "button", class: "link", onclick: signOut }, "Sign out")));
}

async function signOut() {
  const session = readSession();
  clearSession();
  dropAllDrafts();  // an explicit sign-out; a session that merely expired keeps them
  render();
  if (session?.refresh_token) {
    await fetch("/auth/logout", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh_token }) }).catch(() => null);
  }
}

function render(notice) {
  current?.cleanup?.();
  const session = readSession();
  if (!session) {
    current = authView({ notice, onSignedIn: () => render() });
    replace(app, h("main", { class: "page" }, current));
    app.querySelector("input")?.focus();
    return;
  }
  const hash = location.hash;
  const [pattern, make] = ROUTES.find(([p]) => p.test(hash)) || [null, () => h("p", {}, "Nothing here. ", h("a", { href: "#/agents" }, "Go to your agents"))];
  const match = pattern ? hash.match(pattern).slice(1) : [];
  current = make(match);
  replace(app, header(session), h("main", { class: "page" }, current));
  document.title = `${app.querySelector("h1")?.textContent || "pasar"} - pasar`;
}

onExpired(() => render("Your session has ended. Sign in again: what you typed is kept."));
window.addEventListener("hashchange", () => render());
render();
