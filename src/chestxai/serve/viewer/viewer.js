// chestxai viewer: plain JavaScript, no build step, no CDN; everything comes from the service.
"use strict";

const $ = (id) => document.getElementById(id);
let catalogue = null;
let lastFile = null;
let busy = 0;

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  select.appendChild(o);
}

function currentModel() {
  return catalogue.models.find((m) => m.name === $("model").value) || catalogue.models[0];
}

function fillModelControls() {
  const m = currentModel();
  const label = $("label");
  label.replaceChildren();
  option(label, "", "top-scoring");
  m.labels.forEach((l) => option(label, l, l));
  const unc = $("uncertainty");
  unc.replaceChildren();
  option(unc, "", "none");
  m.uncertainty.forEach((u) => option(unc, u, u));
}

async function loadCatalogue() {
  const r = await fetch("v1/models");
  catalogue = await r.json();
  catalogue.models.forEach((m) => option($("model"), m.name, `${m.name} (${m.model})`));
  ["gradcam", ...catalogue.explain_methods.filter((x) => x !== "gradcam" && x !== "random")]
    .forEach((x) => option($("method"), x, x));
  option($("method"), "", "no heatmap");
  fillModelControls();
}

function showError(text) {
  const e = $("error");
  e.textContent = text;
  e.hidden = !text;
}

async function send(file) {
  lastFile = file;
  showError("");
  const q = new URLSearchParams({ display: "true", model: $("model").value });
  if ($("method").value) q.set("explain", $("method").value);
  if ($("label").value) q.set("label", $("label").value);
  if ($("uncertainty").value) q.set("uncertainty", $("uncertainty").value);
  const form = new FormData();
  form.append("file", file, file.name);
  const ticket = ++busy;
  $("status").textContent = `analysing ${file.name} ...`;
  let r;
  try {
    r = await fetch(`v1/predict?${q}`, { method: "POST", body: form });
  } catch (err) {
    $("status").textContent = "";
    showError(`The service did not answer (${err}).`);
    return;
  }
  const body = await r.json().catch(() => ({ detail: `HTTP ${r.status}` }));
  if (ticket !== busy) return; // a newer request superseded this one
  $("status").textContent = "";
  if (!r.ok) {
    showError(`${file.name} could not be analysed: ${body.detail || r.statusText} (HTTP ${r.status})`);
    return;
  }
  render(body);
}

function pct(x) {
  return x.toFixed(3);
}

function render(body) {
  $("result").hidden = false;
  $("image").src = body.image;
  const heat = $("heatmap");
  const boxes = $("boxes");
  boxes.replaceChildren();
  const ex = body.explanation;
  if (ex) {
    heat.src = ex.heatmap;
    heat.hidden = false;
    heat.style.opacity = $("opacity").value;
    ex.boxes.forEach((b) => {
      const d = document.createElement("div");
      d.style.left = `${100 * b.fraction[0]}%`;
      d.style.top = `${100 * b.fraction[1]}%`;
      d.style.width = `${100 * b.fraction[2]}%`;
      d.style.height = `${100 * b.fraction[3]}%`;
      d.title = `box (heat share ${b.score})`;
      boxes.appendChild(d);
    });
    boxes.hidden = !$("show-boxes").checked;
    $("caption").textContent = `${ex.method} heatmap for ${ex.label}; ${ex.boxes.length} box(es)`;
  } else {
    heat.hidden = true;
    heat.removeAttribute("src");
    $("caption").textContent = `${body.file.name} (${body.file.format}, ${body.file.width}x${body.file.height})`;
  }
  const tbody = $("probs").querySelector("tbody");
  tbody.replaceChildren();
  const u = body.uncertainty;
  document.querySelectorAll("#probs .unc").forEach((c) => (c.hidden = !u));
  body.labels.forEach((l) => {
    const tr = document.createElement("tr");
    if (l.decision) tr.classList.add("positive");
    if (ex && ex.label === l.name) tr.classList.add("chosen");
    const cells = [l.name, pct(l.probability), pct(l.threshold), l.decision ? "positive" : "negative"];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = c;
      if (i === 1 || i === 2) td.className = "num";
      tr.appendChild(td);
    });
    const td = document.createElement("td");
    td.className = "num unc";
    td.hidden = !u;
    td.textContent = u ? `${pct(u.mean[l.name])} ± ${pct(u.std[l.name])}` : "";
    tr.appendChild(td);
    tbody.appendChild(tr);
  });
  $("thresholds-note").textContent =
    `Decisions at the run's operating thresholds (${body.threshold_source}` +
    (body.threshold_policy ? `, ${body.threshold_policy}` : "") + `). ${body.disclaimer}.`;
}

function wire() {
  $("file").addEventListener("change", (e) => e.target.files[0] && send(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]);
  });
  $("opacity").addEventListener("input", (e) => ($("heatmap").style.opacity = e.target.value));
  $("show-boxes").addEventListener("change", (e) => ($("boxes").hidden = !e.target.checked));
  $("model").addEventListener("change", () => { fillModelControls(); if (lastFile) send(lastFile); });
  ["method", "label", "uncertainty"].forEach((id) =>
    $(id).addEventListener("change", () => lastFile && send(lastFile)));
}

wire();
loadCatalogue().catch((err) => showError(`Could not reach the service (${err}).`));
