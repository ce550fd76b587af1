// The admin page: plain fetch() calls to the same /admin and /v1 endpoints any client can use.
const state = { key: sessionStorage.getItem("moe-admin-key") || "" };
const $ = (sel) => document.querySelector(sel);

function say(message, ok) {
  const el = $("#status");
  el.textContent = message;
  el.className = ok ? "ok" : "error";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${state.key}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function row(expert) {
  const tr = document.createElement("tr");
  tr.dataset.name = expert.name;
  const model = expert.litellm_model || expert.adapter_path || expert.base_model || "";
  [expert.name, expert.kind, model, expert.skills.join(", "), String(expert.exemplars.length),
   String(expert.cost_per_1k_tokens)].forEach((t) => tr.appendChild(cell(t)));
  const toggle = document.createElement("input");
  toggle.type = "checkbox";
  toggle.checked = expert.enabled;
  toggle.title = "enabled";
  toggle.addEventListener("change", () => run(() => api("PATCH", `/admin/experts/${expert.name}`, { enabled: toggle.checked }), `${expert.name} ${toggle.checked ? "enabled" : "disabled"}`));
  const enabledTd = document.createElement("td");
  enabledTd.appendChild(toggle);
  tr.appendChild(enabledTd);
  const remove = document.createElement("button");
  remove.textContent = "Remove";
  remove.addEventListener("click", () => run(() => api("DELETE", `/admin/experts/${expert.name}`), `removed ${expert.name}`));
  const removeTd = document.createElement("td");
  removeTd.appendChild(remove);
  tr.appendChild(removeTd);
  return tr;
}

async function refresh() {
  const experts = await api("GET", "/admin/experts");
  $("#experts tbody").replaceChildren(...experts.map(row));
  return experts;
}

async function run(action, message) {
  try {
    await action();
    await refresh();
    say(message, true);
  } catch (err) {
    say(err.message, false);
  }
}

function specFrom(form) {
  const data = Object.fromEntries(new FormData(form).entries());
  const spec = { name: data.name, kind: data.kind, description: data.description,
    cost_per_1k_tokens: Number(data.cost_per_1k_tokens || 0),
    skills: data.skills.split(",").map((s) => s.trim()).filter(Boolean),
    exemplars: data.exemplars.split("\n").map((s) => s.trim()).filter(Boolean) };
  for (const field of ["base_model", "adapter_path", "litellm_model", "api_base", "api_key_env"]) {
    if (data[field]) spec[field] = data[field];
  }
  if (spec.kind === "litellm") delete spec.base_model;
  return spec;
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("#api-key").value;
  sessionStorage.setItem("moe-admin-key", state.key);
  run(async () => {}, "connected");
});

$("#add-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const spec = specFrom(event.target);
  run(() => api("POST", "/admin/experts", spec), `added ${spec.name}`);
});

$("#route-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const decision = await api("POST", "/v1/route", { query: event.target.query.value });
    $("#route-result").textContent = JSON.stringify(decision, null, 2);
  } catch (err) {
    say(err.message, false);
  }
});

if (state.key) run(async () => {}, "connected");
