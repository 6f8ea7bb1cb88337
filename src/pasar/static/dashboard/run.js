// One run as it happens: its steps stream in (model calls, tool calls and results); a risky call
// waits for Approve or Reject; the answer shows at the end.
import { api, runEvents, SessionExpired } from "./api.js";
import { h, replace } from "./dom.js";
import { STATUS, TERMINAL } from "./labels.js";

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

const PLAN_MARKS = { done: "✓", completed: "✓", failed: "✗", in_progress: "…" };

function planItem(data) {
  // plan_execute: steps with a status; todo: the model's to-do list; a plugin's: as JSON
  const items = data.steps || data.todos;
  if (!Array.isArray(items)) return h("pre", {}, pretty(data));
  return h("ol", { class: "plan-steps" }, items.map((item) => {
    const title = item.title ?? item.content ?? pretty(item);
    return h("li", {}, `${PLAN_MARKS[item.status] || "·"} ${title}`);
  }));
}

function stepItem(type, data) {
  if (type === "plan") {
    const heading = data.reason ? `New plan (${data.reason})` : "Plan";
    return h("li", { class: "step step-plan" }, h("strong", {}, heading), planItem(data));
  }
  if (type === "model_call") {
    const calls = (data.tool_calls || []).map((call) => call.tool || call.name);
    return h("li", { class: "step step-model" }, h("strong", {}, "Model"),
      data.content ? h("p", {}, data.content) : null,
      calls.length ? h("p", {}, `decides to call ${calls.join(", ")}`) : null);
  }
  if (type === "tool_call") {
    return h("li", { class: "step step-tool-call" }, h("strong", {}, `Calls ${data.tool || data.name}`), h("pre", {}, pretty(data.args)));
  }
  if (type === "tool_result") {
    return h("li", { class: `step step-tool-result${data.error ? " step-error" : ""}` },
      h("strong", {}, `${data.tool || data.name} ${data.error ? "failed" : "answered"}`),
      h("pre", {}, pretty(data.error ?? data.result ?? data.output ?? data)));
  }
  return null;
}

export function runView({ executionId }) {
  const status = h("p", { class: "run-status", role: "status" }, "Connecting...");
  const steps = h("ol", { class: "steps", "aria-live": "polite", "aria-label": "Steps" });
  const live = h("p", { class: "live-tokens" });
  const approval = h("div", { class: "approval" });
  const answer = h("div", { class: "answer", "aria-live": "polite" });
  const back = h("p", {});
  const stop = new AbortController();
  let lastSeq = 0;
  let finished = false;

  function setStatus(value) {
    status.textContent = STATUS[value] || value;
    status.dataset.status = value;
  }

  async function showApproval() {
    const run = await api("GET", `/executions/${executionId}`);
    if (run.status !== "awaiting_approval" || !run.pending_approval) return;
    // Every call of the pause is decided at once, each bound to the arguments shown here.
    const pending = run.pending_approvals || [run.pending_approval];
    const bound = pending.every((call) => call.args_hash);
    const problem = h("p", { class: "form-error", role: "alert" });
    async function decide(decision) {
      for (const button of approval.querySelectorAll("button")) button.disabled = true;
      const body = bound
        ? { decisions: pending.map((call) => ({ tool_call_id: call.tool_call_id, args_hash: call.args_hash, decision })) }
        : { decision };
      try {
        await api("POST", `/executions/${executionId}/approval`, body);
        replace(approval, h("p", { class: "hint" }, decision === "approve" ? "Approved: the run goes on." : "Rejected: the agent is told no."));
      } catch (error) {
        if (error instanceof SessionExpired) return;
        problem.textContent = error.message;
        for (const button of approval.querySelectorAll("button")) button.disabled = false;
      }
    }
    const calls = pending.map((call) => [
      h("p", {}, `The agent wants to call ${call.tool} with:`),
      h("pre", {}, pretty(call.args)),
    ]).flat();
    replace(approval, h("section", { class: "card pending", "aria-labelledby": "approval-title" },
      h("h2", { id: "approval-title" }, pending.length > 1 ? `Approve these ${pending.length} actions?` : "Approve this action?"),
      ...calls,
      h("div", { class: "buttons" },
        h("button", { class: "primary", type: "button", onclick: () => decide("approve") }, "Approve"),
        h("button", { class: "danger", type: "button", onclick: () => decide("reject") }, "Reject")),
      problem));
    approval.querySelector("button").focus();
  }

  // The run waits for a consent at the provider; it resumes by itself after the callback.
  async function showConsent() {
    const run = await api("GET", `/executions/${executionId}`);
    if (run.status !== "awaiting_authorization" || !run.auth_url) return;
    replace(approval, h("section", { class: "card pending" },
      h("h2", {}, "This run needs your Google account"),
      h("p", {}, "Connect it in the new tab; the run goes on by itself once you have."),
      h("a", { class: "button primary", href: run.auth_url, target: "_blank", rel: "noopener" }, "Connect Google")));
  }

  async function showEnd() {
    const run = await api("GET", `/executions/${executionId}`);
    setStatus(run.status);
    replace(back, h("a", { href: `#/agents/${run.agent_id}` }, "Back to the agent"));
    if (!TERMINAL.has(run.status)) return false;
    live.textContent = "";
    replace(answer, run.output?.message ? h("section", { class: "card" }, h("h2", {}, "Answer"), h("p", {}, run.output.message)) : null,
      run.error ? h("p", { class: "form-error", role: "alert" }, run.error) : null);
    return true;
  }

  async function follow() {
    try {
      while (!finished) {
        for await (const event of runEvents(executionId, lastSeq, stop.signal)) {
          if (event.id) lastSeq = event.id;
          if (event.type === "token") {
            live.textContent += event.data.text ?? event.data.token ?? "";
            continue;
          }
          if (event.type === "status") {
            setStatus(event.data.status);
            if (event.data.status === "awaiting_approval") await showApproval();
            if (event.data.status === "awaiting_authorization") await showConsent();
            if (TERMINAL.has(event.data.status)) finished = true;
            continue;
          }
          live.textContent = "";
          const item = stepItem(event.type, event.data);
          if (item) steps.append(item);
        }
        if (stop.signal.aborted) return;
        finished = (await showEnd()) || finished;
        if (!finished) await new Promise((resume) => setTimeout(resume, 1000)); // then resume
      }
      await showEnd();
    } catch (error) {
      if (!(error instanceof SessionExpired) && !stop.signal.aborted) replace(answer, h("p", { class: "form-error", role: "alert" }, error.message));
    }
  }

  follow();
  const view = h("section", {}, h("h1", {}, "Run"), status, steps, live, approval, answer, back);
  view.cleanup = () => stop.abort();
  return view;
}
