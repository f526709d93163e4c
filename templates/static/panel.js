// Outfitter panel: progressive enhancement only; every page works without this file.
"use strict";

// visible_if: show a field only while every named input has one of the listed values.
// The server enforces the same rule; hidden fields are disabled so they are not submitted.
function inputValue(form, name) {
  const el = form.elements[name];
  if (!el) return undefined;
  if (el.type === "checkbox") return el.checked;
  if (el.type === "number") return el.value === "" ? undefined : Number(el.value);
  return el.value;
}

function applyVisibility(form) {
  for (const field of form.querySelectorAll("[data-visible-if]")) {
    let rules;
    try { rules = JSON.parse(field.dataset.visibleIf); } catch (e) { continue; }
    const visible = Object.entries(rules).every(([name, allowed]) => {
      const controller = form.querySelector("#field-" + CSS.escape(name));
      if (controller && controller.hidden) return false;
      const value = inputValue(form, name);
      return allowed.some((a) => a === value || String(a) === String(value));
    });
    field.hidden = !visible;
    for (const el of field.querySelectorAll("input, select, textarea")) el.disabled = !visible;
  }
}

function setupForm() {
  const form = document.getElementById("install-form");
  if (!form) return;
  // Chains (a depends on b depends on c) settle in a few passes.
  const apply = () => { for (let i = 0; i < 4; i++) applyVisibility(form); };
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  apply();
}

// Job page: live log, progress and state over server-sent events.
function setupJob() {
  const job = document.getElementById("job");
  if (!job || !window.EventSource) return;
  if (job.dataset.terminal === "true") return;
  const log = document.getElementById("log");
  const state = document.getElementById("job-state");
  const progress = document.getElementById("progress");
  const percent = document.getElementById("progress-percent");
  const message = document.getElementById("progress-message");
  const url = "/api/v1/jobs/" + encodeURIComponent(job.dataset.jobId) +
    "/events?last_event_id=" + encodeURIComponent(job.dataset.lastSeq || "0");
  const finals = (job.dataset.finalStates || "").split(" ");
  const source = new EventSource(url);
  // A 204 (the job ended between the page and the stream, its last event already on the
  // page) closes the source for good: reload once for the final state.
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setTimeout(() => window.location.reload(), 300);
  };
  source.onmessage = (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch (e) { return; }
    job.dataset.lastSeq = String(ev.seq);
    if (ev.type === "log") {
      const prefix = ev.stream === "runner" ? "# " : "";
      log.append(document.createTextNode(prefix + ev.line + "\n"));
      log.scrollTop = log.scrollHeight;
    } else if (ev.type === "progress") {
      progress.value = ev.percent;
      percent.textContent = ev.percent + "%";
      message.textContent = ev.message;
    } else if (ev.type === "state") {
      state.textContent = ev.state;
      state.className = "state-" + ev.state;
      let line = "# attempt " + ev.attempt + ": " + ev.state;
      if (ev.exit_code !== undefined) line += " (exit code " + ev.exit_code + ")";
      if (ev.reason) line += ": " + ev.reason;
      log.append(document.createTextNode(line + "\n"));
      if (finals.includes(ev.state)) {
        source.close();
        // Reload once to show the final facts and the right buttons.
        setTimeout(() => window.location.reload(), 300);
      }
    }
  };
}

// The rollout page: polls the rollout and recolours its grid until it has ended and no
// job of it is out there any more.
function setupRollout() {
  const grid = document.getElementById("rollout-grid");
  if (!grid || !window.fetch) return;
  const state = document.getElementById("rollout-state");
  const url = "/api/v1/rollouts/" + encodeURIComponent(grid.dataset.rollout);
  const finals = ["halted", "succeeded", "aborted"];
  const tick = async () => {
    let r;
    try {
      const resp = await fetch(url, { credentials: "same-origin" });
      if (!resp.ok) return setTimeout(tick, 3000);
      r = await resp.json();
    } catch (e) { return setTimeout(tick, 3000); }
    state.textContent = r.state;
    state.className = "rollout-state rollout-" + r.state;
    for (const t of r.targets) {
      const cell = document.getElementById("target-" + t.agent_id);
      if (!cell) continue;
      cell.className = "cell target-" + t.state;
      cell.querySelector(".cell-state").textContent = t.state;
      cell.title = t.agent_id + " · batch " + t.batch + " · " + t.state + (t.reason ? " · " + t.reason : "");
      if (t.job_id) cell.href = "/jobs/" + t.job_id;
    }
    for (const c of document.querySelectorAll("#rollout-counts .count")) {
      c.querySelector("b").textContent = r.counts[c.dataset.state] ?? 0;
    }
    const out = r.targets.some((t) => t.state === "queued" || t.state === "running");
    if (finals.includes(r.state) && !out) {
      // Reload once to show the history and the right buttons.
      setTimeout(() => window.location.reload(), 300);
      return;
    }
    setTimeout(tick, 1000);
  };
  if (grid.dataset.final !== "true") setTimeout(tick, 1000);
}

// The server page: fetches its charts again every heartbeat interval and swaps them in
// (the same server-drawn markup), keeping the table open if it was.
function setupAgentCharts() {
  if (!document.getElementById("agent-charts") || !window.fetch) return;
  const tick = async () => {
    const box = document.getElementById("agent-charts");
    const every = Number(box.dataset.refreshMs) || 10000;
    const url = "/agents/" + encodeURIComponent(box.dataset.agentId) + "/charts?range=" + encodeURIComponent(box.dataset.range);
    try {
      const resp = await fetch(url, { credentials: "same-origin" });
      if (resp.ok) {
        const open = document.getElementById("metrics-table-box")?.open;
        const fresh = document.createElement("div");
        fresh.innerHTML = await resp.text();
        const next = fresh.querySelector("#agent-charts");
        if (next) {
          box.replaceWith(next);
          if (open) document.getElementById("metrics-table-box").open = true;
        }
      }
    } catch (e) { /* the panel is away; try again at the next tick */ }
    setTimeout(tick, every);
  };
  setTimeout(tick, Number(document.getElementById("agent-charts").dataset.refreshMs) || 10000);
}

document.addEventListener("DOMContentLoaded", () => { setupForm(); setupJob(); setupRollout(); setupAgentCharts(); });
