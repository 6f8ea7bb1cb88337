// A tiny DOM builder: h("button", { class: "primary", onclick }, "Save"). Text is always set as
// text (never parsed as HTML), so nothing a server or user wrote can inject markup.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name in element && typeof value !== "string") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let counter = 0;
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

// A labelled field with its own error line (aria-describedby), returned as { row, input, error }.
export function field(label, input, { hint } = {}) {
  input.id ||= uid("field");
  const error = h("p", { class: "field-error", id: `${input.id}-error`, role: "alert" });
  const described = [error.id];
  let hintLine = null;
  if (hint) {
    hintLine = h("p", { class: "hint", id: `${input.id}-hint` }, hint);
    described.unshift(hintLine.id);
  }
  input.setAttribute("aria-describedby", described.join(" "));
  const row = h("div", { class: "field" }, h("label", { for: input.id }, label), hintLine, input, error);
  return { row, input, error };
}

export function showFieldError(entry, message) {
  entry.error.textContent = message || "";
  if (message) entry.input.setAttribute("aria-invalid", "true");
  else entry.input.removeAttribute("aria-invalid");
}

export function formatDate(value) {
  return value ? new Date(value).toLocaleString() : "";
}
