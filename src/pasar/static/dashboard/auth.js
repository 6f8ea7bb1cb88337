// Sign in and sign up. The tokens go to sessionStorage (this tab), never to a cookie or a URL.
import { anonymous, ApiError } from "./api.js";
import { field, h, showFieldError } from "./dom.js";
import { saveSession } from "../session.js";

export function authView({ notice, onSignedIn }) {
  let mode = "sign-in";
  const email = field("Email", h("input", { type: "email", name: "email", autocomplete: "email", required: true }));
  const password = field(
    "Password",
    h("input", { type: "password", name: "password", autocomplete: "current-password", required: true }),
    { hint: "At least 8 characters." },
  );
  const problem = h("p", { class: "form-error", role: "alert" });
  const title = h("h1", {}, "Sign in to pasar");
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const switcher = h("button", { type: "button", class: "link", onclick: toggle }, "New here? Create an account");

  function toggle() {
    mode = mode === "sign-in" ? "sign-up" : "sign-in";
    const signUp = mode === "sign-up";
    title.textContent = signUp ? "Create your pasar account" : "Sign in to pasar";
    submit.textContent = signUp ? "Create account" : "Sign in";
    switcher.textContent = signUp ? "Already have an account? Sign in" : "New here? Create an account";
    password.input.autocomplete = signUp ? "new-password" : "current-password";
    password.input.minLength = signUp ? 8 : 0;
    problem.textContent = "";
  }

  function validLocally() {
    let valid = true;
    for (const entry of [email, password]) {
      const message = entry.input.validity.valid ? "" : entry.input.validationMessage;
      showFieldError(entry, message);
      valid &&= !message;
    }
    return valid;
  }

  async function onsubmit(event) {
    event.preventDefault();
    problem.textContent = "";
    if (!validLocally()) return;
    const credentials = { email: email.input.value.trim(), password: password.input.value };
    submit.disabled = true;
    try {
      if (mode === "sign-up") await anonymous("POST", "/auth/signup", credentials);
      const tokens = await anonymous("POST", "/auth/token", credentials);
      saveSession({ ...tokens, email: credentials.email });
      onSignedIn();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const fields = error.fieldErrors();
      showFieldError(email, fields["/email"]);
      showFieldError(password, fields["/password"]);
      if (!fields["/email"] && !fields["/password"]) problem.textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  }

  return h(
    "section",
    { class: "auth card", "aria-labelledby": "auth-title" },
    Object.assign(title, { id: "auth-title" }),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    h("form", { novalidate: true, onsubmit }, email.row, password.row, problem, submit),
    switcher,
  );
}
