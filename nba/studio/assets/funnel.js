// nba studio: the population funnel (/ui/funnel?channel=CH[&n=N&at=T&placement=P&limit=L]).
// A dry-run explained decision for the first N customers of the snapshot,
// run by the sidecar in the background (POST /ui/api/funnel), polled for
// progress (GET) and cancelable (DELETE). It shows per action how many
// customers pass each stage, how many end with no action or only actions
// below a propensity threshold (the slider: counted here from the
// histogram of best propensities the API returns), and each action's share
// of first place. "nba funnel" counts the same (server.Funnel).
"use strict";

(function () {
  // Registered in studio.pages (app.js routes to it; this file runs
  // before app.js, which keeps the registry).
  const studio = (window.studio = window.studio || {});
  const pages = (studio.pages = studio.pages || {});
  const stageNames = {
    placement: "Placement", schedule: "Schedule", journey: "Journey", eligibility: "Eligible",
    applicability: "Applicable", suitability: "Suitable", contact_policy: "Contact policy",
    exclusion: "Exclusion", holdout: "Holdout", rank: "Rank",
  };
  let charts = [];

  pages.funnel = function (q) {
    const st = studio;
    const { main, el, api, showError } = st;
    if (window.Chart) window.Chart.defaults.animation = false;
    for (const c of charts) c.destroy();
    charts = [];
    const f = {
      channel: el("input", { id: "f-channel", name: "channel", value: q.get("channel") || "", list: "f-channels", required: true, placeholder: "web", autocomplete: "off" }),
      placement: el("input", { id: "f-placement", name: "placement", value: q.get("placement") || "", autocomplete: "off" }),
      n: el("input", { id: "f-n", name: "n", type: "number", min: "1", max: "100000", value: q.get("n") || "10000", class: "mid" }),
      limit: el("input", { id: "f-limit", name: "limit", type: "number", min: "1", max: "100", value: q.get("limit") || "1", class: "narrow" }),
      at: el("input", { id: "f-at", name: "at", value: q.get("at") || "", placeholder: "now, or 2026-12-24T09:00:00Z", autocomplete: "off" }),
    };
    const list = el("datalist", { id: "f-channels" });
    const label = (k, text) => el("label", { for: f[k].id }, text, f[k]);
    const cancel = el("button", { type: "button", id: "f-cancel", class: "secondary", disabled: true, onclick: () => {
      api("/funnel", undefined, "DELETE").catch((e) => showError(out, e));
    } }, "Cancel");
    const prog = el("progress", { id: "f-progress", max: "1", value: "0", "aria-label": "Customers decided" });
    const progText = el("span", { id: "f-progress-text", class: "muted" });
    const status = el("div", { class: "progress", role: "status", "aria-live": "polite" }, prog, " ", progText);
    status.hidden = true;
    const out = el("div", { id: "funnel-out" });
    main.append(el("h1", {}, "Population funnel"),
      el("p", { class: "lead" }, "For a channel and a time, a dry-run decision for each of the first N customers of the snapshot: per action, how many pass each stage, how many customers end with no action, and each action's share of first place. Nothing is recorded."),
      el("form", { class: "bar", id: "funnel-form", onsubmit: (ev) => {
        ev.preventDefault();
        const p = new URLSearchParams();
        for (const k of ["channel", "placement", "at"]) if (f[k].value.trim()) p.set(k, f[k].value.trim());
        p.set("n", f.n.value || "10000");
        if (f.limit.value && f.limit.value !== "1") p.set("limit", f.limit.value);
        history.pushState(null, "", "/ui/funnel?" + p.toString());
        start();
      } }, label("channel", "Channel"), list, label("placement", "Placement"), label("n", "Customers (N)"),
        label("limit", "Actions each"), label("at", "At (RFC 3339)"),
        el("button", { type: "submit", id: "f-run" }, "Run funnel"), cancel),
      status, out);
    st.channels().then((chs) => list.replaceChildren(...chs.map((c) => el("option", { value: c }))), () => {});

    let timer = null;
    const alive = () => document.body.contains(out);

    function query() {
      const body = { channel: f.channel.value.trim(), n: Number(f.n.value) || 10000, limit: Number(f.limit.value) || 1 };
      if (f.placement.value.trim()) body.placement = f.placement.value.trim();
      if (f.at.value.trim()) body.at = f.at.value.trim();
      return body;
    }

    function start() {
      const body = query();
      if (!body.channel) { f.channel.focus(); return; }
      clearTimeout(timer);
      out.replaceChildren();
      api("/funnel", body).then(poll, (e) => showError(out, e));
    }

    function poll(s) {
      if (!alive()) return;
      if (s.state === "none") return;
      status.hidden = false;
      prog.max = Math.max(1, s.total || 1);
      prog.value = s.done || 0;
      progText.textContent = (s.done || 0).toLocaleString("en") + " of " + (s.total || 0).toLocaleString("en") + " customers · " +
        (s.state === "running" ? "running" : s.state) + " · " + (s.took_ms / 1000).toFixed(1) + " s";
      cancel.disabled = s.state !== "running";
      if (s.state === "running") {
        timer = setTimeout(() => api("/funnel").then(poll, (e) => showError(out, e)), 250);
        return;
      }
      if (s.state === "failed") { showError(out, new Error(s.error || "the funnel failed")); return; }
      if (s.state === "canceled") { out.replaceChildren(el("div", { class: "notice", role: "status", id: "funnel-canceled" }, "Canceled.")); return; }
      show(s.result);
    }

    function show(r) {
      for (const c of charts) c.destroy();
      charts = [];
      const n = r.customers;
      const pct = (x) => (n ? (100 * x / n).toFixed(1) + "%" : "0%");
      const slider = el("input", { id: "f-threshold", type: "range", min: "0", max: "1", step: "0.01", value: "0.05" });
      const below = el("output", { id: "below-threshold", for: "f-threshold" });
      const update = () => {
        const k = Math.round(Number(slider.value) * 100);
        let m = r.no_action;
        for (let i = 0; i < k && i < r.best_propensity.length; i++) m += r.best_propensity[i];
        below.textContent = m.toLocaleString("en") + " customers (" + pct(m) + ") end with no action or only actions of propensity below " + Number(slider.value).toFixed(2);
        below.dataset.count = String(m);
      };
      slider.addEventListener("input", update);
      update();
      const firstCanvas = el("canvas", { id: "first-chart", role: "img", "aria-label": "Bar chart: share of first place per action (the table below holds the numbers)" });
      const stageSelect = el("select", { id: "f-action" }, r.actions.map((a) => el("option", { value: a.id }, a.id)));
      const stageCanvas = el("canvas", { id: "stage-chart", role: "img", "aria-label": "Bar chart: customers passing each stage for the chosen action (the table below holds the numbers)" });
      const ranked = r.actions.slice().sort((a, b) => b.first - a.first || b.chosen - a.chosen);
      if (ranked.length && ranked[0].first > 0) stageSelect.value = ranked[0].id;
      out.replaceChildren(
        el("dl", { class: "summary", id: "funnel-summary" },
          el("div", {}, el("dt", {}, "Customers"), el("dd", { id: "f-customers" }, n.toLocaleString("en"))),
          el("div", {}, el("dt", {}, "As of"), el("dd", { id: "f-as-of" }, st.fmtTime(r.query.at))),
          el("div", {}, el("dt", {}, "No action"), el("dd", { id: "f-no-action", "data-count": r.no_action }, r.no_action.toLocaleString("en") + " (" + pct(r.no_action) + ")")),
          el("div", {}, el("dt", {}, "Control group"), el("dd", { id: "f-control" }, r.control.toLocaleString("en"))),
          el("div", {}, el("dt", {}, "Stopped by a channel limit"), el("dd", { id: "f-stopped" }, r.stopped.toLocaleString("en")))),
        el("div", { class: "bar slider" }, el("label", { for: "f-threshold" }, "Propensity threshold"), slider, below),
        el("div", { class: "grid" },
          el("section", { class: "card", "aria-labelledby": "h-first" }, el("h2", { id: "h-first" }, "Share of first place"),
            el("div", { class: "chart" }, firstCanvas)),
          el("section", { class: "card", "aria-labelledby": "h-stage" }, el("h2", { id: "h-stage" }, "Customers passing each stage"),
            el("label", { for: "f-action", class: "inline" }, "Action ", stageSelect),
            el("div", { class: "chart" }, stageCanvas))),
        el("section", { class: "gap", "aria-labelledby": "h-funnel-table" }, el("h2", { id: "h-funnel-table" }, "Per action"),
          el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Per action (scrolls sideways)" }, el("table", { id: "funnel-table" },
            el("caption", { class: "muted cap" }, "Customers whose decision considered the action, then how many passed each stage (and all before it), were given it, and got it first."),
            el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Action"), el("th", { scope: "col" }, "Considered"),
              r.stages.map((s) => el("th", { scope: "col" }, stageNames[s] || s)),
              el("th", { scope: "col" }, "Chosen"), el("th", { scope: "col" }, "First"), el("th", { scope: "col" }, "First share"))),
            el("tbody", {}, r.actions.map((a) => el("tr", { "data-id": a.id },
              el("th", { scope: "row" }, el("code", {}, a.id)),
              el("td", { class: "num", "data-k": "considered" }, a.considered),
              a.passed.map((p, i) => el("td", { class: "num", "data-k": r.stages[i], title: a.removed[i] ? a.removed[i] + " removed here" : "" }, p)),
              el("td", { class: "num", "data-k": "chosen" }, a.chosen),
              el("td", { class: "num", "data-k": "first" }, a.first),
              el("td", { class: "num" }, pct(a.first)))))))));
      if (!window.Chart) return;
      const shown = ranked.filter((a) => a.first > 0);
      firstCanvas.parentNode.style.height = Math.max(280, 40 + 20 * shown.length) + "px"; // a row per action
      charts.push(new window.Chart(firstCanvas, {
        type: "bar",
        data: { labels: shown.map((a) => a.id), datasets: [{ label: "Share of first place (%)", data: shown.map((a) => n ? 100 * a.first / n : 0), backgroundColor: "#2457c5" }] },
        options: { indexAxis: "y", maintainAspectRatio: false, plugins: { legend: { display: false } },
          scales: { x: { title: { display: true, text: "% of customers" } }, y: { ticks: { autoSkip: false } } } },
      }));
      const stageChart = new window.Chart(stageCanvas, {
        type: "bar",
        data: { labels: ["Considered", ...r.stages.map((s) => stageNames[s] || s)], datasets: [{ label: "Customers", data: [], backgroundColor: "#3f8f5a" }] },
        options: { maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
      });
      const setAction = () => {
        const a = r.actions.find((x) => x.id === stageSelect.value);
        stageChart.data.datasets[0].data = a ? [a.considered, ...a.passed] : [];
        stageChart.update();
      };
      stageSelect.addEventListener("change", setAction);
      setAction();
      charts.push(stageChart);
    }

    // A deep link with a channel runs at once, unless the last funnel was
    // this one (then it is shown, or followed while it runs).
    api("/funnel").then((s) => {
      const b = query();
      const sameAt = !b.at || (s.query && new Date(s.query.at).getTime() === new Date(b.at).getTime());
      const same = s.state !== "none" && s.query && s.query.channel === b.channel && (s.query.placement || "") === (b.placement || "") &&
        s.query.n === b.n && s.query.limit === b.limit && sameAt && s.state !== "canceled" && s.state !== "failed";
      if (same) poll(s);
      else if (b.channel) start();
      else f.channel.focus();
    }, (e) => showError(out, e));
  };
})();
