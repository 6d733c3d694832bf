// chestxai viewer: plain JavaScript, no build step, no CDN; everything comes from the service.
"use strict";

const $ = (id) => document.getElementById(id);
let catalogue = null;
let lastFile = null;
let busy = 0;
let shownFile = null; // {width, height} of the original image on screen (ground-truth box scale)
const view = { zoom: 1, x: 0, y: 0 };

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
  option(label, "", "top positive finding");
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
  await loadCard().catch((err) => console.warn(`no model card (${err})`));
}

async function loadCard() {
  const m = currentModel();
  const r = await fetch(`v1/models/${encodeURIComponent(m.name)}/card`);
  if (!r.ok) { $("card").hidden = true; return; }
  const c = await r.json();
  $("card").hidden = false;
  $("card-summary").textContent =
    `${c.name}: ${c.model}, ${c.task}, input ${c.input_size} x ${c.input_size} px ` +
    `(images resized to ${c.resize_to} px first), labels ${c.labels.join(", ")}` +
    (c.checkpoint_epoch != null ? `, checkpoint of epoch ${c.checkpoint_epoch}` : "") + ".";
  const tbody = $("card-metrics").querySelector("tbody");
  tbody.replaceChildren();
  const level = c.ci_level ? `${Math.round(100 * c.ci_level)}% CI` : "CI";
  const row = (name, v) => {
    const tr = document.createElement("tr");
    const ci = v.ci_low != null && v.ci_high != null ? `${level} ${pct(v.ci_low)} – ${pct(v.ci_high)}` : "";
    [name, v.value != null ? pct(v.value) : "n/a", ci].forEach((t) => {
      const td = document.createElement("td");
      td.textContent = t;
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  };
  Object.entries(c.metrics).forEach(([k, v]) => row(k, v));
  Object.entries(c.per_class_roc_auc).forEach(([k, v]) => row(`roc_auc ${k}`, v));
  $("card-metrics").hidden = !c.evaluated;
  const data = Object.entries(c.training_data).map(([k, v]) => `${k}: ${v}`).join("; ");
  $("card-data").textContent =
    (c.evaluated ? `Metrics on the ${c.split} split (${c.n_images} images). ` : `${c.note}. `) +
    (data ? `Training data: ${data}.` : "");
  $("card-use").textContent = `Intended use: ${c.intended_use}`;
}

function clearResult() {
  $("result").hidden = true;
  $("image").removeAttribute("src");
  $("heatmap").removeAttribute("src");
  $("heatmap").hidden = true;
  $("boxes").replaceChildren();
  $("probs").querySelector("tbody").replaceChildren();
  $("caption").textContent = "";
  $("file-name").textContent = "";
  $("explain-note").hidden = true;
  $("colorbar").hidden = true;
  $("thresholds-note").textContent = "";
  shownFile = null;
  drawGroundTruth();
}

function applyWindowLevel() {
  // linear map of [level - window/2, level + window/2] onto [0, 1], clamped (SVG feFuncX)
  const w = Number($("window").value) / 255;
  const lo = Number($("level").value) / 255 - w / 2;
  document.querySelectorAll("#window-level feComponentTransfer > *").forEach((f) => {
    f.setAttribute("slope", String(1 / w));
    f.setAttribute("intercept", String(-lo / w));
  });
  // re-assign the filter so that every engine repaints with the new transfer function
  $("image").style.filter = "none";
  void $("image").offsetWidth;
  $("image").style.filter = "url(#window-level)";
}

function applyView() {
  $("frame").style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.zoom})`;
}

function resetView() {
  view.zoom = 1; view.x = 0; view.y = 0;
  $("zoom").value = "1";
  $("window").value = "255";
  $("level").value = "128";
  applyView();
  applyWindowLevel();
}

function drawGroundTruth() {
  const box = $("gt-box");
  const text = $("gt").value.trim();
  const err = $("gt-error");
  err.hidden = true;
  box.hidden = true;
  if (!text || !shownFile) return;
  const v = text.split(/[ ,]+/).map(Number);
  if (v.length !== 4 || v.some((x) => !Number.isFinite(x) || x < 0) || v[2] <= 0 || v[3] <= 0) {
    err.textContent = "give the box as four numbers x,y,w,h (original pixels)";
    err.hidden = false;
    return;
  }
  const [x, y, w, h] = v;
  box.style.left = `${(100 * x) / shownFile.width}%`;
  box.style.top = `${(100 * y) / shownFile.height}%`;
  box.style.width = `${(100 * w) / shownFile.width}%`;
  box.style.height = `${(100 * h) / shownFile.height}%`;
  box.title = `ground truth ${x},${y},${w},${h}`;
  box.hidden = false;
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
    clearResult();
    showError(`The service did not answer (${err}).`);
    return;
  }
  const body = await r.json().catch(() => ({ detail: `HTTP ${r.status}` }));
  if (ticket !== busy) return; // a newer request superseded this one
  $("status").textContent = "";
  if (!r.ok) {
    clearResult(); // never leave the previous image's heatmap and numbers under this error
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
  shownFile = { width: body.file.width, height: body.file.height };
  $("file-name").textContent =
    `${body.file.name || "(unnamed upload)"} (${body.file.format}, ${body.file.width} x ${body.file.height} px)`;
  drawGroundTruth();
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
    $("caption").textContent =
      `${ex.method} heatmap for ${ex.label} (${ex.positive ? "positive" : "NEGATIVE"}, ${ex.selected_by}); ` +
      `${ex.boxes.length} box(es), in ${ex.space} pixels`;
    $("explain-note").textContent = ex.note ? `Note: ${ex.note}.` : "";
    $("explain-note").hidden = !ex.note;
    $("colorbar").hidden = false;
    $("colorbar-range").textContent =
      `colour scale 0 (blue) to 1 (red); this map: ${ex.value_range[0].toFixed(2)} – ${ex.value_range[1].toFixed(2)}`;
  } else {
    $("explain-note").hidden = true;
    $("colorbar").hidden = true;
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
  $("window").addEventListener("input", applyWindowLevel);
  $("level").addEventListener("input", applyWindowLevel);
  $("zoom").addEventListener("input", (e) => { view.zoom = Number(e.target.value); applyView(); });
  $("reset-view").addEventListener("click", resetView);
  $("gt").addEventListener("input", drawGroundTruth);
  const vp = $("viewport");
  vp.addEventListener("dragstart", (e) => e.preventDefault()); // pan, not the browser's image drag
  vp.addEventListener("wheel", (e) => {
    e.preventDefault();
    view.zoom = Math.min(8, Math.max(1, view.zoom * (e.deltaY < 0 ? 1.25 : 0.8)));
    $("zoom").value = String(view.zoom);
    applyView();
  }, { passive: false });
  let drag = null;
  vp.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX - view.x, y: e.clientY - view.y };
    vp.classList.add("dragging");
  });
  window.addEventListener("pointermove", (e) => {
    if (!drag) return;
    view.x = e.clientX - drag.x;
    view.y = e.clientY - drag.y;
    applyView();
  });
  window.addEventListener("pointerup", () => { drag = null; vp.classList.remove("dragging"); });
  $("model").addEventListener("change", () => {
    fillModelControls();
    loadCard().catch((err) => console.warn(`no model card (${err})`));
    if (lastFile) send(lastFile);
  });
  ["method", "label", "uncertainty"].forEach((id) =>
    $(id).addEventListener("change", () => lastFile && send(lastFile)));
}

wire();
loadCatalogue().catch((err) => showError(`Could not reach the service (${err}).`));
