// An agent's knowledge on its page: the documents it has learned (each can be forgotten), a
// document added as typed text or as a file (PDF, DOCX, PPTX, XLSX, CSV, TXT), and a search that
// shows what the agent would recall for a question.
import { api, ApiError, SessionExpired } from "./api.js";
import { field, formatDate, h, replace, showFieldError } from "./dom.js";

const MAX_FILE_BYTES = 20 * 1024 * 1024; // as the server's
const FILE_KINDS = ".pdf,.docx,.pptx,.xlsx,.csv,.txt";

function base64Of(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}

function message(error) {
  return error instanceof ApiError ? error.message : String(error);
}

export function knowledgeSection(agentId, agent) {
  const documents = h("div", { "aria-live": "polite" }, "Loading the agent's knowledge...");
  const status = h("p", { role: "status", class: "ok" });
  const recallHint = agent.config.memory === "vector"
    ? "The agent recalls the passages nearest each input before it answers."
    : "The agent recalls these only with the memory \"Knowledge and recall\" (edit the agent) or with the knowledge search tool.";

  async function refresh() {
    try {
      const listed = await api("GET", `/agents/${agentId}/knowledge`);
      if (!listed.documents.length) {
        replace(documents, h("p", {}, "No documents yet."));
        return;
      }
      replace(documents, h("ul", { class: "documents", "aria-label": "Documents" }, listed.documents.map((doc) => h("li", {},
        h("span", {}, doc.name), " ",
        h("span", { class: "hint" }, `${doc.chunks} passage(s) · ${doc.chars} characters · ${formatDate(doc.created_at)}`), " ",
        h("button", { type: "button", class: "link", "aria-label": `Forget ${doc.name}`, onclick: () => forget(doc) }, "Forget")))));
    } catch (error) {
      if (!(error instanceof SessionExpired)) replace(documents, h("p", { class: "form-error", role: "alert" }, message(error)));
    }
  }

  async function forget(doc) {
    try {
      await api("DELETE", `/agents/${agentId}/knowledge/${doc.id}`);
      status.textContent = `Forgot ${doc.name}.`;
      await refresh();
    } catch (error) {
      if (!(error instanceof SessionExpired)) status.textContent = message(error);
    }
  }

  // Add: typed text, or a file read in the browser and sent as base64.
  const docName = field("Document name", h("input", { name: "document_name", maxLength: 200 }));
  const docText = field("Text", h("textarea", { name: "document_text", rows: 4 }), {
    hint: "Paste what the agent should know, or choose a file below instead.",
  });
  const docFile = field("Or a file", h("input", { name: "document_file", type: "file", accept: FILE_KINDS }), {
    hint: "PDF, Word, PowerPoint, Excel, CSV or text; at most 20 MB.",
  });
  const addProblem = h("p", { class: "form-error", role: "alert" });
  const addButton = h("button", { type: "submit" }, "Add to knowledge");
  const addForm = h("form", { novalidate: true, class: "card", "aria-label": "Add a document" },
    h("h3", {}, "Add a document"), docName.row, docText.row, docFile.row, addProblem, addButton);
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    addProblem.textContent = "";
    status.textContent = "";
    for (const entry of [docName, docText, docFile]) showFieldError(entry, "");
    const file = docFile.input.files?.[0];
    const text = docText.input.value.trim();
    if (!file && !text) {
      showFieldError(docText, "Type some text or choose a file.");
      docText.input.focus();
      return;
    }
    if (!file && !docName.input.value.trim()) {
      showFieldError(docName, "Give the document a name.");
      docName.input.focus();
      return;
    }
    if (file && file.size > MAX_FILE_BYTES) {
      showFieldError(docFile, "The file is larger than 20 MB.");
      docFile.input.focus();
      return;
    }
    addButton.disabled = true;
    try {
      const added = file
        ? await api("POST", `/agents/${agentId}/knowledge/files`, { filename: file.name, content_base64: base64Of(await file.arrayBuffer()) })
        : await api("POST", `/agents/${agentId}/knowledge`, { name: docName.input.value.trim(), text });
      addForm.reset();
      status.textContent = `Learned ${added.name}: ${added.chunks} passage(s).`;
      await refresh();
    } catch (error) {
      if (error instanceof SessionExpired) return;
      const target = file ? docFile : docText;
      showFieldError(target, message(error));
      target.input.focus();
    } finally {
      addButton.disabled = false;
    }
  });

  // Search: what the agent would recall for a question.
  const query = field("Question", h("input", { name: "knowledge_query", type: "search", maxLength: 2000 }));
  const hits = h("div", { "aria-live": "polite" });
  const searchForm = h("form", { novalidate: true, class: "card", role: "search", "aria-label": "Search the knowledge" },
    h("h3", {}, "What would it recall?"), query.row, h("button", { type: "submit" }, "Search"), hits);
  searchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    showFieldError(query, "");
    const text = query.input.value.trim();
    if (!text) {
      showFieldError(query, "Type a question.");
      query.input.focus();
      return;
    }
    replace(hits, h("p", {}, "Searching..."));
    try {
      const found = await api("POST", `/agents/${agentId}/knowledge/search`, { query: text, k: 5 });
      replace(hits, found.hits.length
        ? h("ol", { class: "hits", "aria-label": "Passages found" }, found.hits.map((hit) => h("li", {},
          h("p", { class: "hint" }, `${hit.document || "a past exchange"} · similarity ${hit.score.toFixed(2)}`),
          h("p", {}, hit.content))))
        : h("p", {}, "Nothing in the knowledge is near that question."));
    } catch (error) {
      if (!(error instanceof SessionExpired)) replace(hits, h("p", { class: "form-error", role: "alert" }, message(error)));
    }
  });

  refresh();
  return h("section", { "aria-labelledby": "knowledge-title" },
    h("h2", { id: "knowledge-title" }, "Knowledge"),
    h("p", { class: "hint" }, recallHint),
    documents, status, addForm, searchForm);
}
