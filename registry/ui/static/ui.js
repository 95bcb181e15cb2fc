// Dockyard's web UI: copy buttons and filter-as-you-type. Every page works without this file.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Plain http on a LAN address is not a secure context: fall back to a selected field.
  const field = document.createElement("textarea");
  field.value = text;
  field.setAttribute("readonly", "");
  field.style.position = "absolute";
  field.style.left = "-9999px";
  document.body.appendChild(field);
  field.select();
  const ok = document.execCommand("copy");
  field.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  copyText(button.dataset.copy).then(() => {
    button.setAttribute("data-copied", "");
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; button.removeAttribute("data-copied"); }, 1500);
  }, () => { button.textContent = "Select and copy"; });
});

// Filter as you type: fetch the same page with the new query and swap in its results.
function liveFilter(form) {
  const target = document.getElementById(form.dataset.liveFilter);
  const input = form.querySelector('input[type="search"]');
  if (!target || !input) return;
  let timer = null;
  let controller = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const url = new URL(form.action, window.location.href);
      for (const [key, value] of new FormData(form)) url.searchParams.set(key, value);
      url.searchParams.delete("page");
      if (controller) controller.abort();
      controller = new AbortController();
      try {
        const response = await fetch(url, { signal: controller.signal, headers: { Accept: "text/html" } });
        if (!response.ok) return;
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById(target.id);
        if (fresh) {
          target.replaceChildren(...fresh.childNodes);
          history.replaceState(null, "", url);
        }
      } catch (error) {
        if (error.name !== "AbortError") throw error;
      }
    }, 150);
  });
}

document.querySelectorAll("form[data-live-filter]").forEach(liveFilter);
