// Register a custom tool: id, words, effect, what it runs (one HTTP request, or Python in a
// sandbox) and its input schema, checked as you type (JSON, an object schema); the server's
// checks land next to their field on save.
import { api, ApiError, SessionExpired } from "./api.js";
import { field, h, replace, showFieldError } from "./dom.js";
import { dropDraft, readDraft, saveDraft } from "./drafts.js";
import { EFFECTS } from "./labels.js";

const EXAMPLE_SCHEMA = `{
  "type": "object",
  "required": ["city"],
  "additionalProperties": false,
  "properties": {
    "city": {"type": "string", "maxLength": 100}
  }
}`;
const ID_PATTERN = /^[a-z][a-z0-9_]{0,23}:[a-z][a-z0-9_]{0,31}$/; // as the server's

// Why the text is not a usable input schema ("" when it is).
export function schemaProblem(text) {
  let schema;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    return `Not valid JSON: ${error.message}`;
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return "Write a JSON object.";
  if (schema.type !== "object") return 'The input schema needs "type": "object".';
  if (schema.properties !== undefined && (typeof schema.properties !== "object" || Array.isArray(schema.properties))) {
    return '"properties" must be an object of named argument schemas.';
  }
  if (schema.required !== undefined && !(Array.isArray(schema.required) && schema.required.every((n) => typeof n === "string"))) {
    return '"required" must be a list of argument names.';
  }
  const unknown = (schema.required || []).filter((name) => !(name in (schema.properties || {})));
  if (unknown.length) return `Required but not in "properties": ${unknown.join(", ")}.`;
  return "";
}

export function customToolView() {
  const id = field("Tool id", h("input", { name: "tool_id", required: true, placeholder: "acme:weather" }), {
    hint: "namespace:name in lower case; the namespace becomes yours.",
  });
  const title = field("Title", h("input", { name: "title", required: true, maxLength: 200 }));
  const description = field("Description", h("textarea", { name: "description", rows: 2, required: true, maxLength: 4000 }), {
    hint: "What the model reads to decide when to call it.",
  });
  const effect = field("What it does", h("select", { name: "effect" },
    Object.entries(EFFECTS).map(([value, [word, meaning]]) => h("option", { value }, `${word}: ${meaning}`))));
  const kind = field("It runs", h("select", { name: "kind" },
    h("option", { value: "http" }, "One HTTP request (from the server, through its guard)"),
    h("option", { value: "python" }, "Python code (in a sandbox container)")));
  const method = field("HTTP method", h("select", { name: "method" }, ["GET", "POST", "PUT", "PATCH", "DELETE"].map((m) => h("option", { value: m }, m))));
  const url = field("URL", h("input", { name: "url", type: "url", placeholder: "https://api.example.com/weather?city={city}" }), {
    hint: "{name} takes an argument; the host is fixed.",
  });
  const source = field("Python source", h("textarea", { name: "source", rows: 6, spellcheck: false, value: "def run(args):\n    return {}\n" }), {
    hint: "run(args) returns the result.",
  });
  const schema = field("Input schema (JSON Schema)", h("textarea", { name: "input_schema", rows: 9, spellcheck: false }), {
    hint: "The arguments the tool takes. Checked as you type.",
  });
  schema.input.value = EXAMPLE_SCHEMA;
  const httpPart = h("div", {}, method.row, url.row);
  const pythonPart = h("div", { hidden: true }, source.row);
  const problem = h("p", { class: "form-error", role: "alert" });
  const done = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, "Register tool");
  const fields = { "/id": id, "/title": title, "/description": description, "/effect": effect,
    "/input_schema": schema, "/implementation/url": url, "/implementation/method": method,
    "/implementation/source": source };
  const form = h("form", { novalidate: true, class: "card" }, id.row, title.row, description.row, effect.row,
    kind.row, httpPart, pythonPart, schema.row, problem, submit, done);

  const values = () => Object.fromEntries(["tool_id", "title", "description", "effect", "kind", "method", "url", "source", "input_schema"]
    .map((name) => [name, form.elements[name].value]));
  const draft = readDraft("tool.new");
  if (draft) for (const [name, value] of Object.entries(draft)) form.elements[name].value = value;

  function showKind() {
    const python = kind.input.value === "python";
    httpPart.hidden = python;
    pythonPart.hidden = !python;
  }
  showKind();
  kind.input.addEventListener("change", showKind);
  schema.input.addEventListener("input", () => showFieldError(schema, schemaProblem(schema.input.value)));
  form.addEventListener("input", () => saveDraft("tool.new", values()));

  function validLocally() {
    const problems = new Map();
    const text = (entry) => entry.input.value.trim();
    if (!ID_PATTERN.test(text(id))) problems.set(id, "Write namespace:name, e.g. acme:weather.");
    if (!text(title)) problems.set(title, "Give the tool a title.");
    if (!text(description)) problems.set(description, "Say what the tool does.");
    if (kind.input.value === "http" && !url.input.validity.valid) problems.set(url, url.input.validationMessage);
    if (kind.input.value === "http" && !text(url)) problems.set(url, "Give the URL it calls.");
    if (kind.input.value === "python" && !text(source)) problems.set(source, "Write the Python source.");
    const schemaError = schemaProblem(schema.input.value);
    if (schemaError) problems.set(schema, schemaError);
    for (const entry of Object.values(fields)) showFieldError(entry, problems.get(entry) || "");
    problems.keys().next().value?.input.focus();
    return problems.size === 0;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    replace(done);
    if (!validLocally()) return;
    const implementation = kind.input.value === "http"
      ? { kind: "http", method: method.input.value, url: url.input.value.trim() }
      : { kind: "python", source: source.input.value };
    const body = { id: id.input.value.trim(), title: title.input.value.trim(), description: description.input.value.trim(),
      effect: effect.input.value, input_schema: JSON.parse(schema.input.value), implementation };
    submit.disabled = true;
    try {
      const saved = await api("POST", "/tools", body);
      dropDraft("tool.new");
      replace(done, h("p", { role: "status", class: "ok" }, `Registered ${saved.tool_id}, version ${saved.version}. Tick it in an agent's tools.`),
        h("a", { href: "#/catalogue" }, "See it in the catalogue"));
    } catch (error) {
      if (error instanceof SessionExpired) return;
      if (!(error instanceof ApiError)) throw error;
      let placed = false;
      for (const [path, message] of Object.entries(error.fieldErrors())) {
        const entry = fields[path] || (path.startsWith("/input_schema") ? schema : null);
        if (entry && !placed) entry.input.focus();
        if (entry) {
          showFieldError(entry, path === "/input_schema" || entry !== schema ? message : `${path.slice("/input_schema".length)}: ${message}`);
          placed = true;
        }
      }
      if (!placed) problem.textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  });

  return h("section", {}, h("h1", {}, "Register a custom tool"),
    h("p", { class: "lead" }, "Your own tool, for your agents: it takes part in the catalogue, approvals and limits like any other."),
    form);
}
