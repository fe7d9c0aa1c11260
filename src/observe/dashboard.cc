// The dashboard page: static HTML, CSS and JavaScript served from the binary (no build step, no
// fetch from the internet). It polls the JSON API once a second and redraws.
#include "sabot/observe/metrics_server.h"

namespace sabot::observe {

namespace {
constexpr std::string_view kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sabot dashboard</title>
<link rel="icon" href="data:,">
<style>
body { font-family: sans-serif; margin: 0; background: #f4f5f7; color: #222; }
header { background: #20344f; color: #fff; padding: 10px 18px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 20px; margin: 0; }
header span { font-size: 14px; }
main { padding: 12px 18px; }
section { background: #fff; border-radius: 6px; padding: 10px 14px; margin-bottom: 14px; box-shadow: 0 1px 2px #0002; }
h2 { font-size: 16px; margin: 4px 0 10px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e3e5e8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.graph { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
.task { border: 2px solid #4a78b5; border-radius: 6px; padding: 6px 8px; background: #eef3fa; }
.task .op { font-size: 13px; padding: 2px 0; }
.task .op + .op::before { content: "\2193 chained "; color: #678; font-size: 11px; display: block; }
.edge { font-size: 12px; color: #555; }
.bar { display: inline-block; height: 9px; background: #4a78b5; vertical-align: middle; }
.bar.bp { background: #c9503c; }
.held { color: #b33; }
.ok { color: #2a7a3a; }
.muted { color: #888; }
</style>
</head>
<body>
<header><h1>Sabot</h1><select id="jobs" title="job"></select><span id="job">loading...</span><span id="state"></span><span id="uptime"></span><span id="restarts"></span><span id="process"></span></header>
<main>
<section><h2>Job graph</h2><div id="graph" class="graph"></div><div id="plan" class="muted"></div></section>
<section><h2>Operators</h2>
<table><thead><tr><th>operator</th><th>par</th><th>records in</th><th>records out</th><th>bytes in</th><th>bytes out</th><th>out / s</th><th>busy</th><th>backpressured</th><th>watermark</th><th>lag</th><th>state</th><th>keys</th></tr></thead><tbody id="ops"></tbody></table></section>
<section><h2>Watermarks: why is each one where it is?</h2>
<table><thead><tr><th>operator</th><th>watermark</th><th>held back by</th></tr></thead><tbody id="holds"></tbody></table>
<h2>Source partitions</h2>
<table><thead><tr><th>source</th><th>subtask</th><th>partition</th><th>watermark</th><th>last data</th><th>idle</th><th>offset</th><th>lag</th></tr></thead><tbody id="parts"></tbody></table></section>
<section id="app" style="display:none"><h2>App: agents</h2>
<table><thead><tr><th>agent</th><th>topic</th><th>concurrency</th><th>records</th><th>failures</th><th>restarts</th><th>keys per subtask</th></tr></thead><tbody id="agents"></tbody></table>
<h2>App: tables</h2>
<table><thead><tr><th>table</th><th>key</th><th>value</th><th>window</th><th>values in the newest checkpoint</th></tr></thead><tbody id="tables"></tbody></table></section>
<section><h2>Checkpoints</h2><div id="cpsummary"></div>
<table><thead><tr><th>id</th><th>status</th><th>duration</th><th>size</th><th>path</th></tr></thead><tbody id="cps"></tbody></table></section>
</main>
<script>
"use strict";
let previous = null;
let selected = 0;  // which job (an App worker runs one per agent)
let rendered = false;
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmt(n) {
  if (n === null || n === undefined) return "-";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + " k";
  return String(Math.round(n * 100) / 100);
}
function fmtTime(ms) { return ms === null ? "-" : new Date(ms).toISOString().replace("T", " ").replace("Z", ""); }
function fmtMs(ms) { return ms === null || ms === undefined ? "-" : ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : ms + " ms"; }
function bar(share, cls) {
  const span = el("span");
  const b = el("span", null, "bar" + (cls ? " " + cls : ""));
  b.style.width = Math.round(Math.min(1, share) * 60) + "px";
  span.appendChild(b);
  span.appendChild(document.createTextNode(" " + (share * 100).toFixed(1) + "%"));
  return span;
}
function row(cells) {
  const tr = el("tr");
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.appendChild(c); else if (c && c.num !== undefined) { td.textContent = c.num; td.className = "num"; } else td.textContent = c === undefined ? "" : c;
    tr.appendChild(td);
  }
  return tr;
}
function sum(subtasks, key) { return subtasks.reduce((a, s) => a + (s[key] || 0), 0); }
function minWatermark(subtasks) {
  let m = null;
  for (const s of subtasks) if (s.watermark_ms !== null && (m === null || s.watermark_ms < m)) m = s.watermark_ms;
  return m;
}
async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}
function drawGraph(job) {
  const graph = document.getElementById("graph");
  graph.replaceChildren();
  const byId = new Map(job.operators.map(o => [o.id, o]));
  for (const head of job.operators.filter(o => o.chain_head === o.id)) {
    const members = job.operators.filter(o => o.chain_head === head.id);
    if (head.inputs.length > 0) {
      const edges = head.inputs.map(i => (byId.get(i.from) || { name: "?" }).name + " \u2192 " + i.partitioning + (i.side_output ? " (side " + i.side_output + ")" : ""));
      graph.appendChild(el("div", edges.join(", ") + " \u2192", "edge"));
    }
    const box = el("div", null, "task");
    for (const m of members) {
      const d = el("div", m.name + " \u00d7" + m.parallelism + (m.source ? " (source)" : ""), "op");
      d.setAttribute("data-graph-op", m.name);
      box.appendChild(d);
    }
    graph.appendChild(box);
  }
  document.getElementById("plan").textContent = job.plan;
}
async function refresh() {
  try {
    const [jobDoc, metricsDoc, wmDoc, cpDoc] = await Promise.all([
      getJson("/api/job"), getJson("/api/metrics"), getJson("/api/watermarks"), getJson("/api/checkpoints")]);
    const appDoc = await getJson("/api/app");
    drawApp(appDoc.app);
    const p = jobDoc.process;
    document.getElementById("process").textContent = "CPU " + p.cpu_seconds.toFixed(1) + " s, RSS " + fmt(p.rss_bytes) + "B";
    if (jobDoc.jobs.length === 0) { document.getElementById("job").textContent = "no job running"; return; }
    const jobs = document.getElementById("jobs");
    if (jobs.options.length !== jobDoc.jobs.length) {
      jobs.replaceChildren(...jobDoc.jobs.map((j, i) => { const o = el("option", j.job); o.value = String(i); return o; }));
      jobs.onchange = () => { selected = Number(jobs.value); previous = null; refresh(); };
    }
    if (selected >= jobDoc.jobs.length) selected = 0;
    jobs.value = String(selected);
    jobs.style.display = jobDoc.jobs.length > 1 ? "" : "none";
    const job = jobDoc.jobs[selected], metrics = metricsDoc.jobs[selected], wm = wmDoc.jobs[selected], cp = cpDoc.jobs[selected];
    if (!metrics || !wm || !cp) return;  // a job started or ended between the requests
    document.getElementById("job").textContent = "job " + job.job;
    document.getElementById("state").textContent = job.state;
    document.getElementById("uptime").textContent = "up " + fmtMs(job.uptime_ms);
    document.getElementById("restarts").textContent = job.restarts + " restarts";
    drawGraph(job);
    const now = metrics.now_ms;
    const ops = document.getElementById("ops");
    ops.replaceChildren();
    const par = new Map(job.operators.map(o => [o.name, o.parallelism]));
    // Rates over the server clock: a browser timer may run on virtual time (headless tests).
    const wall = previous ? (metrics.now_ms - previous.t) / 1000 : 0;
    const current = new Map();
    for (const o of metrics.operators) {
      const out = sum(o.subtasks, "records_out"), busy = sum(o.subtasks, "busy_seconds"), bp = sum(o.subtasks, "backpressured_seconds");
      current.set(o.name, { out, busy, bp });
      const before = previous && previous.ops.get(o.name);
      const n = o.subtasks.length || 1;
      const rate = before && wall > 0 ? (out - before.out) / wall : null;
      const busyShare = before && wall > 0 ? (busy - before.busy) / wall / n : 0;
      const bpShare = before && wall > 0 ? (bp - before.bp) / wall / n : 0;
      const w = minWatermark(o.subtasks);
      const state = o.subtasks.reduce((a, s) => a + Math.max(0, s.state_bytes), 0);
      const keyed = o.subtasks.some(s => s.state_keys >= 0);
      const keys = o.subtasks.reduce((a, s) => a + Math.max(0, s.state_keys), 0);
      const tr = row([o.name, { num: par.get(o.name) }, { num: fmt(sum(o.subtasks, "records_in")) }, { num: fmt(out) },
        { num: fmt(sum(o.subtasks, "bytes_in")) + "B" }, { num: fmt(sum(o.subtasks, "bytes_out")) + "B" },
        { num: rate === null ? "-" : fmt(rate) }, bar(Math.max(0, busyShare)), bar(Math.max(0, bpShare), "bp"),
        fmtTime(w), w === null ? "-" : fmtMs(now - w), state > 0 ? fmt(state) + "B" : "-",
        { num: keyed ? fmt(keys) : "-" }]);
      tr.className = "op-row";
      tr.setAttribute("data-op", o.name);
      tr.children[3].className = "num records-out";
      ops.appendChild(tr);
    }
    previous = { t: metrics.now_ms, ops: current };
    const holds = document.getElementById("holds");
    holds.replaceChildren();
    for (const h of wm.operators) {
      const tr = row([h.operator + "[" + h.subtask + "]", fmtTime(h.watermark_ms), el("span", h.explanation, h.held && h.behind_ms >= 1000 ? "held" : "ok")]);
      holds.appendChild(tr);
    }
    const parts = document.getElementById("parts");
    parts.replaceChildren();
    for (const s of wm.partitions) parts.appendChild(row([s.source, { num: s.subtask }, { num: s.partition }, fmtTime(s.watermark_ms), s.event_time === false ? "-" : s.since_data_ms === null ? "never" : fmtMs(s.since_data_ms) + " ago", s.event_time === false ? "-" : s.idle ? "idle" : "active",
      { num: s.offset === null ? "-" : String(s.offset) }, { num: s.lag === null ? "-" : String(s.lag) }]));
    document.getElementById("cpsummary").textContent = cp.completed + " completed, " + cp.aborted + " aborted";
    const cps = document.getElementById("cps");
    cps.replaceChildren();
    for (const c of cp.history.slice(-20).reverse()) cps.appendChild(row([{ num: c.id }, c.status + (c.savepoint ? " (savepoint)" : ""), fmtMs(c.duration_ms), fmt(c.bytes) + "B", c.path]));
    if (!rendered) { rendered = true; console.log("sabot-dashboard: rendered " + metrics.operators.length + " operators"); }
  } catch (e) {
    console.error("sabot-dashboard: " + e.message);
  }
}
// An App worker's agents and tables (/api/app; null for other jobs).
function drawApp(app) {
  document.getElementById("app").style.display = app ? "" : "none";
  if (!app) return;
  const agents = document.getElementById("agents");
  agents.replaceChildren();
  for (const a of app.agents) {
    const tr = row([a.name, a.topic, { num: a.concurrency }, { num: fmt(a.records) }, { num: a.failures }, { num: a.restarts },
      a.subtasks.map(s => s.keys === null ? "-" : fmt(s.keys)).join(" / ") || "-"]);
    tr.setAttribute("data-agent", a.name);
    agents.appendChild(tr);
  }
  const tables = document.getElementById("tables");
  tables.replaceChildren();
  for (const t of app.tables) {
    const link = el("a");
    link.href = "/api/tables/" + encodeURIComponent(t.name) + "?limit=100";
    link.textContent = "/api/tables/" + t.name;
    const tr = row([t.name, t.key_type, t.value_type, t.window || "-", link]);
    tr.setAttribute("data-table", t.name);
    tables.appendChild(tr);
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
)HTML";
}  // namespace

std::string_view dashboard_html() { return kPage; }

}  // namespace sabot::observe
