// nba studio: performance and learning (/ui/dashboard). Reads
// GET /ui/api/dashboard every 5 seconds while shown: decide requests per
// second and latency percentiles from the process's own metrics (sampled
// by the sidecar every 5 s for 15 minutes), actions decided per action and
// channel, the online models' evidence per action over time, and from the
// decision log the uplift per action against the control group with 95%
// intervals (the rows "nba uplift -json" prints) and the mean propensity of
// each chosen action per minute.
"use strict";

(function () {
  // Registered in studio.pages (app.js routes to it; this file runs
  // before app.js, which keeps the registry).
  const studio = (window.studio = window.studio || {});
  const pages = (studio.pages = studio.pages || {});
  const palette = ["#2457c5", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d", "#364fc7", "#495057"];
  let charts = {};

  function clock(t) {
    return new Date(t).toISOString().slice(11, 19);
  }

  function pctIv(iv) {
    if (!iv || iv[0] === null) return "—";
    const f = (x) => (x === null ? "?" : (100 * x).toFixed(2));
    return f(iv[0]) + "% [" + f(iv[1]) + ", " + f(iv[2]) + "]";
  }

  pages.dashboard = function () {
    const st = studio;
    const { main, el, api, showError } = st;
    if (window.Chart) window.Chart.defaults.animation = false;
    for (const c of Object.values(charts)) c.destroy();
    charts = {};
    const out = el("div", { id: "dashboard-out" });
    const updated = el("span", { id: "d-updated", class: "muted" });
    const refresh = el("button", { type: "button", id: "d-refresh", onclick: () => load() }, "Refresh");
    main.append(el("h1", {}, "Performance and learning"),
      el("p", { class: "lead" }, "This sidecar's own numbers: throughput and latency of POST /v1/decide over the last minutes, actions decided, what the online models have learnt, and uplift against the control group from the decision log."),
      el("div", { class: "bar plain" }, refresh, " ", updated), out);
    const canvas = (id, label) => el("canvas", { id, role: "img", "aria-label": label });
    const cv = {
      rate: canvas("rate-chart", "Line chart: decide requests per second over the last minutes"),
      latency: canvas("latency-chart", "Line chart: latency percentiles p50, p90, p99 of decide requests in milliseconds"),
      decisions: canvas("decisions-chart", "Bar chart: actions decided per action, stacked by channel (the table holds the numbers)"),
      uplift: canvas("uplift-chart", "Chart: response-rate uplift per action against control with 95% intervals (the table holds the numbers)"),
      evidence: canvas("evidence-chart", "Line chart: the online models' evidence per action over time"),
      propensity: canvas("propensity-chart", "Line chart: mean propensity of each chosen action per minute"),
    };
    const card = (id, title, ...kids) => el("section", { class: "card", "aria-labelledby": "h-" + id }, el("h2", { id: "h-" + id }, title), ...kids);
    const upliftBox = el("div", { id: "uplift-box" });
    const decisionsBox = el("div", {});
    const logNote = el("div", {});
    out.append(
      el("div", { class: "grid" },
        card("rate", "Decide requests per second", el("div", { class: "chart" }, cv.rate)),
        card("latency", "Latency (ms)", el("div", { class: "chart" }, cv.latency))),
      el("div", { class: "grid gap" },
        card("decisions", "Actions decided by action and channel", el("div", { class: "chart" }, cv.decisions), decisionsBox),
        card("uplift", "Uplift against control (95%)", logNote, el("div", { class: "chart" }, cv.uplift), upliftBox)),
      el("div", { class: "grid gap" },
        card("evidence", "Online models: evidence per action", el("div", { class: "chart" }, cv.evidence)),
        card("propensity", "Mean propensity of chosen actions per minute", el("div", { class: "chart" }, cv.propensity))));

    let timer = null;
    const alive = () => document.body.contains(out);

    function chart(key, config) {
      if (!window.Chart) return;
      config.options = Object.assign({ maintainAspectRatio: false }, config.options || {});
      if (charts[key]) {
        charts[key].data = config.data;
        charts[key].options = config.options;
        charts[key].update();
        return;
      }
      charts[key] = new window.Chart(cv[key], config);
    }

    // sizeRows sizes a bar chart's box to a row per bar.
    const sizeRows = (key, n) => { cv[key].parentNode.style.height = Math.max(280, 60 + 20 * n) + "px"; };

    // The time axes span the sampler's points (at least one sample
    // interval either side of a lone point).
    let timeScale = {};

    function show(d) {
      updated.textContent = "As of " + st.fmtTime(d.now) + " · sampled every " + d.sample_every_s + " s";
      const pts = d.points;
      const ts = [...pts.map((p) => Date.parse(p.t)), ...d.learning.map((p) => Date.parse(p.t)), Date.parse(d.now)];
      const lo = Math.min(...ts), hi = Math.max(...ts), pad = lo === hi ? 1000 * d.sample_every_s : 0;
      timeScale = { type: "linear", min: lo - pad, max: hi + pad, ticks: { callback: (v) => clock(v), maxTicksLimit: 8 } };
      chart("rate", {
        type: "line",
        data: { datasets: [{ label: "requests/s", data: pts.map((p) => ({ x: Date.parse(p.t), y: p.rate })), borderColor: palette[0], pointRadius: 2 }] },
        options: { scales: { x: timeScale, y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
      });
      chart("latency", {
        type: "line",
        data: { datasets: [["p50", "p50_ms"], ["p90", "p90_ms"], ["p99", "p99_ms"]].map(([l, k], i) => ({
          label: l, data: pts.filter((p) => p[k] !== null).map((p) => ({ x: Date.parse(p.t), y: p[k] })), borderColor: palette[i], pointRadius: 2 })) },
        options: { scales: { x: timeScale, y: { beginAtZero: true, title: { display: true, text: "ms" } } } },
      });

      const actions = [...new Set(d.decisions.map((x) => x.action))].sort();
      const chans = [...new Set(d.decisions.map((x) => x.channel))].sort();
      const count = (a, c) => (d.decisions.find((x) => x.action === a && x.channel === c) || { count: 0 }).count;
      sizeRows("decisions", actions.length);
      chart("decisions", {
        type: "bar",
        data: { labels: actions, datasets: chans.map((c, i) => ({ label: c, data: actions.map((a) => count(a, c)), backgroundColor: palette[i % palette.length] })) },
        options: { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true, ticks: { autoSkip: false } } } },
      });
      decisionsBox.replaceChildren(actions.length ? el("details", {}, el("summary", {}, "Numbers"),
        el("table", { id: "decisions-table" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Action"), chans.map((c) => el("th", { scope: "col" }, c)))),
          el("tbody", {}, actions.map((a) => el("tr", {}, el("th", { scope: "row" }, el("code", {}, a)), chans.map((c) => el("td", { class: "num" }, count(a, c)))))))) :
        el("p", { class: "muted" }, "No action decided yet (dry runs are not counted)."));

      const log = d.decision_log;
      if (d.decision_log_error) logNote.replaceChildren(el("div", { class: "error", role: "alert" }, d.decision_log_error));
      else if (!log) logNote.replaceChildren(el("p", { class: "muted", id: "no-log" }, "The decision log is off (-decisionlog=false): no uplift to show."));
      else logNote.replaceChildren();
      const rows = (log && log.uplift) || [];
      const shown = rows.filter((r) => r.uplift[0] !== null);
      sizeRows("uplift", shown.length);
      chart("uplift", {
        type: "bar",
        data: {
          labels: shown.map((r) => r.action + " · " + r.channel),
          datasets: [
            { type: "bar", label: "95% interval (points of %)", data: shown.map((r) => [100 * (r.uplift[1] ?? r.uplift[0]), 100 * (r.uplift[2] ?? r.uplift[0])]), backgroundColor: "rgba(36,87,197,.25)", borderColor: palette[0], borderWidth: 1 },
            { type: "line", label: "uplift", data: shown.map((r) => 100 * r.uplift[0]), showLine: false, pointRadius: 4, borderColor: palette[1], backgroundColor: palette[1] },
          ],
        },
        options: { indexAxis: "y", scales: { x: { title: { display: true, text: "uplift of the response rate (points of %)" } }, y: { ticks: { autoSkip: false } } } },
      });
      upliftBox.replaceChildren(rows.length ?
        el("table", { id: "uplift" },
          el("caption", { class: "muted cap" }, "Per action and channel, decisions that showed the action against control-group decisions that withheld it; \"*\" is every decision of the channel. A decision responded when a feedback accept or convert names it."),
          el("thead", {}, el("tr", {}, ["Channel", "Action", "Treated", "Control", "Rate treated", "Rate control", "Uplift [95%]"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rows.map((r) => el("tr", { "data-channel": r.channel, "data-action": r.action, "data-uplift": JSON.stringify(r.uplift) },
            el("td", {}, r.channel), el("td", {}, el("code", {}, r.action)),
            el("td", { class: "num", "data-k": "treated" }, r.treated), el("td", { class: "num", "data-k": "control" }, r.control),
            el("td", { class: "num" }, pctIv(r.rate_treated)), el("td", { class: "num" }, pctIv(r.rate_control)),
            el("td", { class: "num", "data-k": "uplift" }, pctIv(r.uplift)))))) :
        el("p", { class: "muted", id: "uplift-empty" }, log ? "No decision in the log yet." : ""));

      const ev = d.learning;
      const evActions = ev.length ? Object.keys(ev[ev.length - 1].evidence).filter((a) => ev.some((p) => p.evidence[a] > 0)).sort() : [];
      chart("evidence", {
        type: "line",
        data: { datasets: evActions.map((a, i) => ({ label: a, data: ev.map((p) => ({ x: Date.parse(p.t), y: p.evidence[a] || 0 })), borderColor: palette[i % palette.length], pointRadius: 1 })) },
        options: { scales: { x: timeScale, y: { beginAtZero: true, title: { display: true, text: "observations (decayed)" } } } },
      });
      const prop = (log && log.propensity) || [];
      chart("propensity", {
        type: "line",
        data: { datasets: prop.map((s, i) => ({ label: s.action, data: s.points.map((p) => ({ x: Date.parse(p.t), y: p.mean })), borderColor: palette[i % palette.length], pointRadius: 2 })) },
        options: { scales: { x: { type: "linear", ticks: { callback: (v) => clock(v), maxTicksLimit: 8 } }, y: { min: 0, title: { display: true, text: "propensity" } } } },
      });
    }

    function load() {
      clearTimeout(timer);
      api("/dashboard").then((d) => {
        if (!alive()) return;
        show(d);
        out.dataset.loaded = "1";
        timer = setTimeout(load, 5000);
      }, (e) => { if (alive()) showError(out, e); });
    }
    load();
  };
})();
