// Log in with an API key; the server answers with an HttpOnly session cookie (docs/ui.md).
import { api } from "../api.js";
import { h, status } from "../dom.js";

export function renderLogin(main, { onLogin }) {
  const message = h("div", { id: "login-message" });
  const input = h("input", {
    id: "api-key",
    name: "key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const form = h(
    "form",
    { class: "login card", id: "login-form" },
    h("h1", {}, "Log in to feedlens"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { id: "api-key-help", class: "help" },
      "A key of your workspace (fl_…), from `make run` or `feedlens keys create`. It is exchanged for a ",
      "session of 8 hours and not kept in this browser."),
    h("button", { type: "submit" }, "Log in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren(status("Checking the key…"));
    try {
      await api("/v1/session", { method: "POST", json: { key: input.value.trim() } });
      input.value = "";
      await onLogin();
    } catch (error) {
      const text = error.status === 401 ? "That key is unknown or revoked." : error.message;
      message.replaceChildren(status(text, "error"));
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}
