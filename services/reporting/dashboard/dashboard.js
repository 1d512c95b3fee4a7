// Pathways programme dashboard: signs in with a programme-office API key (kept in
// sessionStorage, this tab only), then reads /v1/reports/* on this origin and draws
// the funnel, the cohort curves against the job-start target, the job-start rate by
// local authority and the barriers table. Every figure shown is the API's figure;
// text from the API is only ever set as textContent.
"use strict";

(function () {
  const KEY_STORAGE = "pathways.dashboard.apiKey";
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1d70b8", "#00703c", "#f47738", "#4c2c92", "#d53880", "#28a197",
                   "#912b88", "#85994b", "#b58840", "#5694ca", "#6f72af", "#003078"];
  const $ = (id) => document.getElementById(id);

  // --- formatting (the browser test reads these back) ------------------------------
  const count = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-GB"));
  const percent = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(2) + "%");
  const pounds = (pence) => (pence === null || pence === undefined ? "—"
    : "£" + (pence / 100).toLocaleString("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  const label = (key) => key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function todayIso() {
    const d = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  // --- API ---------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      const errors = (body && body.errors) || [];
      const detail = errors.length ? errors.map((e) => `${e.field}: ${e.message}`).join("; ")
        : (body && (body.detail || body.title)) || `HTTP ${status}`;
      super(detail);
      this.status = status;
    }
  }
  async function api(path, params) {
    const query = new URLSearchParams(params || {}).toString();
    const response = await fetch(path + (query ? "?" + query : ""), {
      headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY_STORAGE), Accept: "application/json" },
      cache: "no-store",
    });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // --- sign in / out -----------------------------------------------------------------
  function showSignIn(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("api-key").focus();
  }
  async function showApp() {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
    const params = new URLSearchParams(location.search);
    if (!$("as-of").value) $("as-of").value = params.get("as_of") || todayIso();
    const list = await api("/v1/reports/programmes");
    const datalist = $("programme-list");
    datalist.replaceChildren(...list.items.map((p) => el("option", { value: p.code }, p.name)));
    if (!$("programme").value) {
      $("programme").value = params.get("programme") || (list.items.length === 1 ? list.items[0].code : "");
    }
    if ($("programme").value) await refresh();
  }
  async function signIn(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    try {
      await api("/v1/reports/programmes");
    } catch (error) {
      showSignIn(error.status === 401 || error.status === 403
        ? "That key was not accepted: a programme office API key is needed."
        : "Could not sign in: " + error.message);
      return;
    }
    $("api-key").value = "";
    await guarded(showApp);
  }
  async function guarded(action) {
    try {
      await action();
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        showSignIn("Please sign in again with a programme office API key.");
      } else {
        setStatus(error.status === 404 ? "No such programme." : "Could not load the reports: " + error.message, true);
      }
    }
  }
  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", Boolean(isError));
  }

  // --- loading -----------------------------------------------------------------------
  async function refresh() {
    const programme = $("programme").value.trim();
    const asOf = $("as-of").value;
    if (!programme || !asOf) return;
    setStatus("Loading…");
    const params = { programme, as_of: asOf };
    const [overall, byLa, cohorts, barriers] = await Promise.all([
      api("/v1/reports/performance", params),
      api("/v1/reports/performance", { ...params, group_by: "local_authority" }),
      api("/v1/reports/cohorts", params),
      api("/v1/reports/barriers", params),
    ]);
    history.replaceState(null, "", `?programme=${encodeURIComponent(programme)}&as_of=${asOf}`);
    drawFunnel(overall.rows[0]);
    drawCohorts(cohorts);
    drawLocalAuthorities(byLa.rows, cohorts.job_start_target);
    drawBarriers(barriers);
    setStatus(`${programme}, figures as of ${overall.as_of}.`);
    document.body.dataset.loaded = `${programme}|${overall.as_of}`;
  }

  // --- funnel ------------------------------------------------------------------------
  function drawFunnel(row) {
    const steps = [
      ["referrals", "Referrals", null],
      ["accepted", "Accepted", null],
      ["attachments", "Attachments", "attachment_rate"],
      ["job_starts", "Job starts", "job_start_rate"],
      ["sustained", "Sustained", "sustainment_rate"],
    ];
    const top = Math.max(1, ...steps.map(([k]) => row[k] || 0));
    const funnel = $("funnel");
    funnel.replaceChildren();
    for (const [key, name, rateKey] of steps) {
      const value = row[key];
      const bar = svg("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "img", "aria-label": `${name} ${count(value)}` });
      bar.append(svg("rect", { class: "track", x: 0, y: 0, width: 100, height: 10 }));
      bar.append(svg("rect", { class: "bar", x: 0, y: 0, width: (100 * (value || 0)) / top, height: 10 }));
      const step = el("div", { class: "funnel-step", "data-step": key });
      step.append(el("span", { class: "label" }, name), bar,
        el("span", { class: "value", "data-field": key }, count(value)),
        el("span", { class: "rate", "data-field": rateKey || "" }, rateKey ? percent(row[rateKey]) : ""));
      funnel.append(step);
    }
    $("funnel-notes").textContent =
      `Sustainment eligible: ${count(row.sustainment_eligible)}. Accrued: ${pounds(row.accrued_pence)}.`;
    $("funnel-notes").dataset.eligible = String(row.sustainment_eligible);
  }

  // --- cohort curves -----------------------------------------------------------------
  function drawCohorts(report) {
    const chart = $("cohort-chart");
    const legend = $("cohort-legend");
    chart.replaceChildren();
    legend.replaceChildren();
    const target = report.job_start_target;
    const W = 760, H = 360, L = 52, R = 20, T = 16, B = 40;
    const values = report.cohorts.flatMap((c) => c.job_start_rate_by_month).filter((v) => v !== null);
    const top = Math.min(1, Math.ceil(Math.max(0.25, (target || 0) * 1.5, ...values) * 20) / 20);
    const x = (m) => L + ((m - 1) * (W - L - R)) / 23;
    const y = (v) => T + (1 - v / top) * (H - T - B);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "cohort-title", "data-testid": "cohort-chart" });
    root.append(svg("title", { id: "cohort-title" }, "Cumulative job-start rate by months since attachment, by attachment quarter"));
    const axis = svg("g", { class: "axis" });
    const step = top > 0.5 ? 0.1 : 0.05;
    for (let v = 0; v <= top + 1e-9; v += step) {
      axis.append(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      axis.append(svg("text", { class: "axis-label", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, `${Math.round(v * 100)}%`));
    }
    for (let m = 1; m <= 24; m += 1) {
      if (m === 1 || m % 3 === 0) {
        axis.append(svg("text", { class: "axis-label", x: x(m), y: H - B + 16, "text-anchor": "middle" }, String(m)));
      }
    }
    axis.append(svg("text", { class: "axis-label", x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, "Months since attachment"));
    root.append(axis);
    if (target !== null && target !== undefined) {
      root.append(svg("line", { class: "target-line", "data-target": target, x1: L, x2: W - R, y1: y(target), y2: y(target) }));
      root.append(svg("text", { class: "target-label", x: W - R - 4, y: y(target) - 6, "text-anchor": "end" }, `Target ${percent(target)}`));
    }
    report.cohorts.forEach((cohort, i) => {
      const colour = PALETTE[i % PALETTE.length];
      let d = "";
      let pen = false;
      const group = svg("g", { "data-cohort": cohort.cohort });
      cohort.job_start_rate_by_month.forEach((v, index) => {
        if (v === null) { pen = false; return; }
        const m = index + 1;
        d += `${pen ? "L" : "M"}${x(m).toFixed(1)},${y(v).toFixed(1)} `;
        pen = true;
        const point = svg("circle", { cx: x(m), cy: y(v), r: 2.5, fill: colour, "data-month": m, "data-value": v });
        point.append(svg("title", {}, `${cohort.cohort}, month ${m}: ${percent(v)}`));
        group.append(point);
      });
      if (d) group.prepend(svg("path", { class: "series", d: d.trim(), stroke: colour }));
      root.append(group);
      const swatch = svg("svg", { viewBox: "0 0 20 10" });
      swatch.append(svg("rect", { x: 0, y: 3, width: 20, height: 4, fill: colour }));
      const item = el("li", { "data-cohort": cohort.cohort });
      item.append(swatch, document.createTextNode(`${cohort.cohort} (${count(cohort.attachments)} attached)`));
      legend.append(item);
    });
    if (!report.cohorts.length) chart.append(el("p", { class: "empty" }, "No attachments yet."));
    chart.append(root);
  }

  // --- local authorities -------------------------------------------------------------
  function drawLocalAuthorities(rows, target) {
    const body = $("la-table").tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const tr = el("tr");
      tr.append(el("td", { colspan: "5", class: "empty" }, "Nothing yet."));
      body.append(tr);
      return;
    }
    const top = Math.max(0.25, target || 0, ...rows.map((r) => r.job_start_rate || 0));
    for (const row of rows) {
      const tr = el("tr", { "data-key": row.key });
      tr.append(el("th", { scope: "row" }, row.key),
        el("td", { class: "num", "data-field": "attachments" }, count(row.attachments)),
        el("td", { class: "num", "data-field": "job_starts" }, count(row.job_starts)),
        el("td", { class: "num", "data-field": "job_start_rate" }, percent(row.job_start_rate)));
      const cell = el("td", { class: "bar-col" });
      const bar = svg("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none" });
      bar.append(svg("rect", { class: "track", x: 0, y: 0, width: 100, height: 10 }));
      bar.append(svg("rect", { class: "bar", x: 0, y: 0, width: (100 * (row.job_start_rate || 0)) / top, height: 10 }));
      if (target) bar.append(svg("line", { class: "target", x1: (100 * target) / top, x2: (100 * target) / top, y1: 0, y2: 10 }));
      cell.append(bar);
      tr.append(cell);
      body.append(tr);
    }
  }

  // --- barriers ----------------------------------------------------------------------
  function drawBarriers(report) {
    const body = $("barriers-table").tBodies[0];
    body.replaceChildren();
    for (const row of report.rows) {
      const tr = el("tr", { "data-key": row.barrier });
      tr.append(el("th", { scope: "row" }, label(row.barrier)));
      for (const [field, fmt] of [["scored", count], ["severe_at_attachment", count], ["severe_share", percent],
                                  ["reviewed", count], ["improved", count], ["improved_rate", percent]]) {
        tr.append(el("td", { class: "num", "data-field": field }, fmt(row[field])));
      }
      body.append(tr);
    }
    const mean = (v) => (v === null ? "—" : v.toFixed(4));
    $("barrier-means").textContent =
      `Mean number of severe barriers, among those with an initial assessment and a review: ` +
      `${mean(report.mean_severe_at_attachment)} at attachment, ${mean(report.mean_severe_at_latest_review)} at the latest review.`;
  }

  // --- wiring ------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("controls").addEventListener("submit", (event) => { event.preventDefault(); guarded(refresh); });
    $("as-of").addEventListener("change", () => guarded(refresh));
    $("sign-out").addEventListener("click", () => showSignIn("Signed out."));
    if (sessionStorage.getItem(KEY_STORAGE)) guarded(showApp);
    else showSignIn();
  });
})();
