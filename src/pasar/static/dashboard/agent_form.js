// Create or edit an agent: name, instructions, model, tools as checkboxes with a live preview of
// the permissions they need, memory and strategy explained, limits and approvals. Errors show
// next to their field; "Connect Google" appears when the tools need a consent not given yet.
import { api, ApiError, graphql, SessionExpired } from "./api.js";
import { effectBadge, firstSentence, loadCatalogue } from "./catalogue.js";
import { field, h, replace, showFieldError, uid } from "./dom.js";
import { dropDraft, readDraft, saveDraft } from "./drafts.js";
import { EFFECTS, RISKS, familyName } from "./labels.js";

const MODELS = ["openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5", "ollama:llama3.2", "scripted"];
const MODEL_PATTERN = /^(scripted|[a-z][a-z0-9_-]{0,49}:[A-Za-z0-9._:/@-]{1,200})$/;
const MEMORY = {
  none: ["No memory", "Each run starts fresh: the agent remembers nothing from earlier runs."],
  thread: ["Conversation memory", "Runs that share a thread id continue the same conversation."],
  summary: ["Summarised conversation", "Like conversation memory, but long conversations are summarised so they keep fitting the model."],
  vector: ["Knowledge and recall", "Before each run, the passages nearest the input from the documents you add on the agent's page, and from your earlier exchanges with it, are given to the agent."],
};
const PREVIEW_QUERY = `query Preview($tools: [String!]!) {
  compileScopes(tools: $tools) {
    provider highestRisk notGranted
    scopes { scope risk description tools }
  }
}`;

function choices(name, options, selected) {
  return h(
    "div",
    { class: "choices" },
    Object.entries(options).map(([value, [label, explanation]]) => {
      const id = uid(name);
      return h(
        "div",
        { class: "choice" },
        h("input", { type: "radio", name, value, id, checked: value === selected, "aria-describedby": `${id}-why` }),
        h("label", { for: id }, label),
        h("p", { class: "hint", id: `${id}-why` }, explanation),
      );
    }),
  );
}

export function agentFormView({ agentId, navigate }) {
  const draftName = `agent.${agentId || "new"}`;
  const name = field("Name", h("input", { name: "name", required: true, maxLength: 200 }));
  const instructions = field("Instructions", h("textarea", { name: "instructions", rows: 4, maxLength: 20000 }), {
    hint: "What the agent is for and how it should behave, in your own words.",
  });
  const model = field("Model", h("input", { name: "model", list: "models", required: true, value: MODELS[0] }), {
    hint: "provider:model, e.g. openai:gpt-4o-mini (the server needs that provider's key).",
  });
  const options = field("Model options (JSON)", h("textarea", { name: "model_options", rows: 3, spellcheck: false, value: "{}" }), {
    hint: 'Advanced: passed to the model, e.g. {"temperature": 0}.',
  });
  const maxSteps = field("Most model calls per run", h("input", { name: "max_steps", type: "number", min: 1, max: 500, value: 25, required: true }));
  const maxTools = field("Most tool calls per run", h("input", { name: "max_tool_calls", type: "number", min: 0, max: 1000, value: 50, required: true }));
  const timeout = field("Time limit per run (seconds)", h("input", { name: "timeout_s", type: "number", min: 1, max: 3600, value: 300, required: true }));
  const toolsBox = h("fieldset", { class: "tool-choices", "aria-describedby": "tools-error" }, h("legend", {}, "Tools"), h("p", {}, "Loading the tools..."));
  const toolsError = h("p", { class: "field-error", id: "tools-error", role: "alert" });
  const memory = h("fieldset", {}, h("legend", {}, "Memory"), choices("memory", MEMORY, "none"));
  // The strategies come from the server (GET /strategies): plugins may add some.
  const strategy = h("fieldset", {}, h("legend", {}, "Strategy"), h("p", {}, "Loading the strategies..."));
  const approvals = h(
    "fieldset",
    {},
    h("legend", {}, "Ask me before tools that..."),
    Object.entries(EFFECTS).filter(([id]) => id !== "read").map(([id, [word, meaning]]) => {
      const inputId = uid("approve");
      return h("div", { class: "check" },
        h("input", { type: "checkbox", name: "approval", value: id, id: inputId, checked: id !== "write" }),
        h("label", { for: inputId }, `${word}: ${meaning}`));
    }),
  );
  const preview = h("div", { class: "scope-preview", "aria-live": "polite", id: "scope-preview" });
  const problem = h("p", { class: "form-error", role: "alert" });
  const saved = h("div", { class: "saved", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, agentId ? "Save changes" : "Create agent");
  const form = h(
    "form",
    { novalidate: true, class: "agent-form", "aria-labelledby": "agent-form-title" },
    h("datalist", { id: "models" }, MODELS.map((m) => h("option", { value: m }))),
    name.row, instructions.row, model.row,
    h("details", {}, h("summary", {}, "Advanced model options"), options.row),
    toolsBox, toolsError,
    h("section", { class: "card", "aria-label": "Permissions these tools need" }, h("h2", {}, "Permissions these tools need"), preview),
    memory, strategy,
    h("fieldset", { class: "limits" }, h("legend", {}, "Limits"), maxSteps.row, maxTools.row, timeout.row),
    approvals,
    problem, submit, saved,
  );
  const fields = { "/name": name, "/config/system_prompt": instructions, "/config/model": model,
    "/config/model_options": options, "/config/limits/max_steps": maxSteps,
    "/config/limits/max_tool_calls": maxTools, "/config/limits/timeout_s": timeout };
  let stored = null; // the agent's config as saved (edit keeps the keys the form does not show)

  const checked = (selector) => [...form.querySelectorAll(selector)].filter((i) => i.checked).map((i) => i.value);

  function state() {
    return {
      name: name.input.value, instructions: instructions.input.value, model: model.input.value,
      options: options.input.value, maxSteps: maxSteps.input.value, maxTools: maxTools.input.value,
      timeout: timeout.input.value, tools: checked("input[name=tool]"), approval: checked("input[name=approval]"),
      memory: checked("input[name=memory]")[0], strategy: checked("input[name=strategy]")[0],
    };
  }

  function fill(values) {
    name.input.value = values.name ?? "";
    instructions.input.value = values.instructions ?? "";
    model.input.value = values.model ?? MODELS[0];
    options.input.value = values.options ?? "{}";
    maxSteps.input.value = values.maxSteps ?? 25;
    maxTools.input.value = values.maxTools ?? 50;
    timeout.input.value = values.timeout ?? 300;
    for (const input of form.querySelectorAll("input[name=tool]")) input.checked = (values.tools || []).includes(input.value);
    for (const input of form.querySelectorAll("input[name=approval]")) input.checked = (values.approval || ["send", "destructive"]).includes(input.value);
    for (const input of form.querySelectorAll("input[name=memory]")) input.checked = input.value === (values.memory || "none");
    for (const input of form.querySelectorAll("input[name=strategy]")) input.checked = input.value === (values.strategy || "react");
  }

  function fromAgent(agent) {
    const config = agent.config;
    return {
      name: agent.name, instructions: config.system_prompt || "", model: config.model,
      options: JSON.stringify(config.model_options || {}), maxSteps: config.limits?.max_steps,
      maxTools: config.limits?.max_tool_calls, timeout: config.limits?.timeout_s, tools: agent.tools,
      approval: config.approval?.require_for, memory: config.memory, strategy: config.strategy,
    };
  }

  let previewed = 0;
  async function updatePreview() {
    const tools = checked("input[name=tool]");
    const ticket = (previewed += 1);
    if (!tools.length) {
      replace(preview, h("p", {}, "No tool needs a permission from another service."));
      return;
    }
    try {
      const { compileScopes } = await graphql(PREVIEW_QUERY, { tools });
      if (ticket !== previewed) return; // a newer tick is on its way
      if (!compileScopes.length) {
        replace(preview, h("p", {}, "These tools need no permission from another service."));
        return;
      }
      replace(preview, compileScopes.map((plan) => h("div", { class: "plan" },
        h("p", {}, `${plan.provider === "google" ? "Google" : plan.provider} will be asked for:`),
        h("ul", {}, plan.scopes.map((scope) => {
          const [risk, meaning] = RISKS[scope.risk] || [scope.risk, ""];
          const missing = plan.notGranted?.includes(scope.scope);
          return h("li", {}, scope.description, " ", h("span", { class: `badge risk-${scope.risk.toLowerCase()}`, title: meaning }, risk),
            missing ? h("span", { class: "badge pending" }, "not granted yet") : null,
            h("span", { class: "hint" }, ` for ${scope.tools.join(", ")}`));
        })))));
    } catch (error) {
      if (!(error instanceof SessionExpired)) replace(preview, h("p", { class: "form-error" }, error.message));
    }
  }

  function validLocally() {
    let valid = true;
    for (const entry of Object.values(fields)) {
      let message = entry.input.validity.valid ? "" : entry.input.validationMessage;
      if (!message && entry === model && !MODEL_PATTERN.test(entry.input.value.trim())) {
        message = "Write provider:model (e.g. openai:gpt-4o-mini) or scripted.";
      }
      if (!message && entry === name && !entry.input.value.trim()) message = "Give the agent a name.";
      if (!message && entry === options) {
        try {
          const parsed = JSON.parse(entry.input.value || "{}");
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) message = "Write a JSON object, e.g. {}.";
        } catch (error) {
          message = `Not valid JSON: ${error.message}`;
        }
      }
      showFieldError(entry, message);
      if (message) entry.input.closest("details")?.setAttribute("open", "");
      if (message && valid) entry.input.focus();
      valid &&= !message;
    }
    return valid;
  }

  function body() {
    const values = state();
    const config = {
      ...(stored || {}),
      model: values.model.trim(),
      model_options: JSON.parse(values.options || "{}"),
      system_prompt: values.instructions.trim() || null,
      memory: values.memory,
      strategy: values.strategy,
      limits: { max_steps: Number(values.maxSteps), max_tool_calls: Number(values.maxTools), timeout_s: Number(values.timeout) },
      approval: { require_for: values.approval },
    };
    return { name: values.name.trim(), tools: values.tools, config };
  }

  function showConnect(result) {
    if (!result.auth_required || !result.auth_url) return null;
    const providers = Object.keys(result.missing_scopes).map((p) => (p === "google" ? "Google" : p));
    return h("div", { class: "connect card" },
      h("p", {}, `These tools need your consent at ${providers.join(", ")} before they can run.`),
      h("a", { class: "button primary", href: result.auth_url, target: "_blank", rel: "noopener" }, `Connect ${providers.join(", ")}`),
      h("p", { class: "hint" }, "It opens in a new tab; come back here when it says connected, and check the connection."),
      h("a", { href: "#/connections" }, "Check the connection"));
  }

  form.addEventListener("input", () => saveDraft(draftName, state()));
  form.addEventListener("change", (event) => {
    saveDraft(draftName, state());
    if (event.target.name === "tool") updatePreview();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    toolsError.textContent = "";
    replace(saved);
    if (!validLocally()) return;
    submit.disabled = true;
    try {
      const result = agentId ? await api("PUT", `/agents/${agentId}`, body()) : await api("POST", "/agents", body());
      dropDraft(draftName);
      stored = result.agent.config;
      replace(saved, h("p", { role: "status", class: "ok" }, agentId ? "Saved." : "Agent created."),
        showConnect(result), h("a", { class: "button", href: `#/agents/${result.agent_id}` }, "Open the agent to run it"));
      if (!agentId) {
        agentId = result.agent_id;
        history.replaceState(null, "", `#/agents/${agentId}/edit`);
        submit.textContent = "Save changes";
      }
    } catch (error) {
      if (error instanceof SessionExpired) return;
      if (!(error instanceof ApiError)) throw error;
      const found = error.fieldErrors();
      let placed = false;
      for (const [path, message] of Object.entries(found)) {
        const entry = fields[path];
        if (entry) {
          entry.input.closest("details")?.setAttribute("open", ""); // never an error out of sight
          showFieldError(entry, message);
          if (!placed) entry.input.focus();
          placed = true;
        } else if (path.startsWith("/tools")) {
          toolsError.textContent = message;
          placed = true;
        }
      }
      if (!placed) problem.textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  });

  Promise.all([loadCatalogue(), api("GET", "/strategies"), agentId ? api("GET", `/agents/${agentId}`) : null]).then(
    ([catalogue, { strategies }, agent]) => {
      const offered = Object.fromEntries(strategies.map((s) => [s.id, [s.title, s.description]]));
      replace(strategy, h("legend", {}, "Strategy"), choices("strategy", offered, "react"));
      const families = [...new Set(catalogue.tools.map((tool) => tool.family))];
      replace(toolsBox, h("legend", {}, "Tools"), h("p", { class: "hint" }, "Tick what the agent may use."),
        families.map((family) => h("div", { class: "tool-family" }, h("h3", {}, familyName(family)),
          catalogue.tools.filter((tool) => tool.family === family).map((tool) => {
            const id = uid("tool");
            return h("div", { class: "check" },
              h("input", { type: "checkbox", name: "tool", value: tool.id, id, "aria-describedby": `${id}-about` }),
              h("label", { for: id }, tool.title, " ", effectBadge(tool.effect)),
              h("p", { class: "hint", id: `${id}-about` }, firstSentence(tool.description)));
          }))));
      if (agent) stored = agent.config;
      fill(readDraft(draftName) || (agent ? fromAgent(agent) : {}));
      updatePreview();
    },
    (error) => {
      if (!(error instanceof SessionExpired)) problem.textContent = error.message;
    },
  );

  return h("section", {},
    h("h1", { id: "agent-form-title" }, agentId ? "Edit agent" : "New agent"),
    form);
}
