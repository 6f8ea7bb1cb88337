// The agents list, and one agent's page: run it (type an input) and its execution history.
import { api, SessionExpired } from "./api.js";
import { field, formatDate, h, replace } from "./dom.js";
import { dropDraft, readDraft, saveDraft } from "./drafts.js";
import { knowledgeSection } from "./knowledge.js";
import { STATUS } from "./labels.js";

function failed(target) {
  return (error) => {
    if (!(error instanceof SessionExpired)) replace(target, h("p", { class: "form-error", role: "alert" }, error.message));
  };
}

export function agentsView() {
  const list = h("div", { "aria-live": "polite" }, "Loading your agents...");
  api("GET", "/agents").then(({ agents }) => {
    if (!agents.length) {
      replace(list, h("p", {}, "No agents yet. Create one: give it a name, tick the tools it may use, and run it."));
      return;
    }
    replace(list, h("ul", { class: "agents" }, agents.map((agent) => h("li", { class: "card" },
      h("h2", {}, h("a", { href: `#/agents/${agent.id}` }, agent.name)),
      h("p", { class: "hint" }, `${agent.tools.length} tool(s) · ${agent.config.model} · updated ${formatDate(agent.updated_at)}`)))));
  }, failed(list));
  return h("section", {},
    h("div", { class: "title-row" }, h("h1", {}, "Your agents"), h("a", { class: "button primary", href: "#/agents/new" }, "New agent")),
    list);
}

function historyList(agentId) {
  const list = h("div", { "aria-live": "polite" }, "Loading...");
  api("GET", `/agents/${agentId}/executions?first=20`).then(({ executions }) => {
    if (!executions.length) {
      replace(list, h("p", {}, "No runs yet."));
      return;
    }
    replace(list, h("ol", { class: "history" }, executions.map((run) => h("li", {},
      h("a", { href: `#/runs/${run.execution_id}` }, formatDate(run.created_at)), " ",
      h("span", { class: `badge status-${run.status}` }, STATUS[run.status] || run.status), " ",
      h("span", { class: "hint" }, typeof run.input === "string" ? run.input.slice(0, 80) : "")))));
  }, failed(list));
  return list;
}

export function agentView({ agentId, navigate }) {
  const header = h("div", { class: "title-row" }, h("h1", {}, "Agent"));
  const about = h("div", {});
  const knowledge = h("div", {});
  const draftName = `run.${agentId}`;
  const input = field("What should the agent do?", h("textarea", { name: "input", rows: 3, required: true, value: readDraft(draftName) || "" }));
  input.input.value = readDraft(draftName) || "";
  const problem = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Run");
  input.input.addEventListener("input", () => saveDraft(draftName, input.input.value));
  const form = h("form", { novalidate: true, class: "card" }, input.row, problem, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const text = input.input.value.trim();
    if (!text) {
      input.error.textContent = "Type what the agent should do.";
      input.input.setAttribute("aria-invalid", "true");
      input.input.focus();
      return;
    }
    input.error.textContent = "";
    input.input.removeAttribute("aria-invalid");
    submit.disabled = true;
    try {
      const run = await api("POST", `/agents/${agentId}/execute`, { input: text, parameters: { wait: false } });
      dropDraft(draftName);
      navigate(`#/runs/${run.execution_id}`);
    } catch (error) {
      if (!(error instanceof SessionExpired)) problem.textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  });
  api("GET", `/agents/${agentId}`).then((agent) => {
    replace(header, h("h1", {}, agent.name), h("a", { class: "button", href: `#/agents/${agentId}/edit` }, "Edit"));
    replace(about, h("p", { class: "hint" }, `Model ${agent.config.model} · tools: ${agent.tools.join(", ") || "none"}`));
    replace(knowledge, knowledgeSection(agentId, agent));
  }, failed(about));
  return h("section", {}, header, about,
    h("h2", {}, "Run it"), form,
    h("h2", {}, "Earlier runs"), historyList(agentId),
    knowledge);
}
