// nba studio: the decision explorer (/ui/explain). A dry-run decision with
// every candidate explained; what-ifs (levers, weights, tiers and context
// changed for one dry run on the server, POST /ui/api/v1/decide with
// "overrides", and one "seed" for the decisions compared); and, when nba
// serve has a candidate bundle
// (-studio.candidate), the same request decided by it beside the live one.
"use strict";

(function () {
  const { el, api, fmtNum, fmtTime, showError, AuthNeeded, main, channels, actionNames } = window.studio;

  // candidate is the candidate bundle's description, or null when the
  // sidecar has none (asked once: it is fixed at start).
  let candidateInfo;
  async function candidate() {
    if (candidateInfo !== undefined) return candidateInfo;
    const c = await api("/candidate");
    candidateInfo = c.loaded ? c : null;
    return candidateInfo;
  }

  // parseContext reads a JSON object or key=value lines (numbers and
  // true/false typed, the rest strings).
  function parseContext(text) {
    text = text.trim();
    if (!text) return undefined;
    if (text.startsWith("{")) return JSON.parse(text);
    const ctx = {};
    for (const line of text.split(/[\n,]+/)) {
      const i = line.indexOf("=");
      if (i <= 0) throw new Error("context: want key=value, got " + JSON.stringify(line.trim()));
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      ctx[k] = v === "true" ? true : v === "false" ? false : v !== "" && !isNaN(Number(v)) ? Number(v) : v;
    }
    return ctx;
  }

  function explainPage(q) {
    const f = {
      customer: el("input", { id: "x-customer", name: "customer", value: q.get("customer") || "", placeholder: "c00042", autocomplete: "off" }),
      channel: el("input", { id: "x-channel", name: "channel", value: q.get("channel") || "", list: "x-channels", required: true, placeholder: "web" }),
      placement: el("input", { id: "x-placement", name: "placement", value: q.get("placement") || "" }),
      limit: el("input", { id: "x-limit", name: "limit", type: "number", min: "1", max: "100", value: q.get("limit") || "3", class: "narrow" }),
      at: el("input", { id: "x-at", name: "at", value: q.get("at") || "", placeholder: "now, or 2026-12-24T09:00:00Z" }),
      context: el("textarea", { id: "x-context", name: "context", placeholder: "key=value, …" }),
    };
    const list = el("datalist", { id: "x-channels" });
    const out = el("div", { id: "explain-out", "aria-live": "polite" });
    const label = (k, text) => el("label", { for: f[k].id }, text, f[k]);
    // The what-if: per action {lever, weight, tier}, and context values,
    // sent as "overrides"; none persists.
    const whatIf = { actions: {}, context: "" };
    main.append(el("h1", {}, "Decision explorer"),
      el("p", { class: "lead" }, "A dry-run decision with every candidate explained: nothing is recorded, no cap or journey moves. Change a lever, weight or tier in the table, or the context below it, to see what the ranking would be."),
      el("form", { class: "bar", id: "explain-form", onsubmit: (ev) => {
        ev.preventDefault();
        const p = new URLSearchParams();
        for (const k of ["customer", "channel", "placement", "at"]) if (f[k].value.trim()) p.set(k, f[k].value.trim());
        if (f.limit.value && f.limit.value !== "3") p.set("limit", f.limit.value);
        history.pushState(null, "", "/ui/explain?" + p.toString());
        run();
      } }, label("customer", "Customer"), label("channel", "Channel"), list, label("placement", "Placement"),
        label("limit", "Limit"), label("at", "At (RFC 3339)"), label("context", "Context"),
        el("button", { type: "submit" }, "Decide (dry run)")),
      out);
    const catalogRead = channels().then((chs) => list.replaceChildren(...chs.map((c) => el("option", { value: c }))), (err) => {
      if (err instanceof AuthNeeded) showError(out, err);
    });

    let seq = 0; // answers to older requests are dropped
    function run() {
      let ctx, wctx;
      try {
        ctx = parseContext(f.context.value);
        wctx = parseContext(whatIf.context);
      } catch (e) { showError(out, e); return; }
      const req = { channel: f.channel.value.trim(), explain: true, dry_run: true, limit: Number(f.limit.value) || 3 };
      if (f.customer.value.trim()) req.customer_id = f.customer.value.trim();
      if (f.placement.value.trim()) req.placement = f.placement.value.trim();
      if (f.at.value.trim()) req.at = f.at.value.trim();
      if (ctx) req.context = ctx;
      // One seed for the decisions of this run: on a channel that
      // explores, they then draw alike and differ only by the what-if and
      // the bundle.
      req.seed = 1 + Math.floor(Math.random() * 2 ** 52);
      const overrides = {};
      if (Object.keys(whatIf.actions).length) overrides.actions = whatIf.actions;
      if (wctx) overrides.context = wctx;
      const what = Object.keys(overrides).length ? Object.assign({}, req, { overrides }) : null;
      const my = ++seq;
      if (!out.querySelector("#candidates")) out.replaceChildren(el("p", { class: "muted" }, "Deciding…"));
      // The plain decision, the what-if (when there is one), and the
      // candidate bundle's decision of the same what-if.
      const base = api("/v1/decide", req);
      const changed = what ? api("/v1/decide", what) : base;
      // The candidate may refuse what the live bundle decides (a channel
      // or action it lacks): its error shows in its own section.
      const cand = candidate().then((c) => c ? api("/v1/decide", Object.assign({}, what || req, { bundle: "candidate" }))
        .then((d) => ({ info: c, d }), (err) => {
          if (err instanceof AuthNeeded) throw err;
          return { info: c, err };
        }) : null);
      Promise.all([base, changed, cand]).then(([b, d, c]) => {
        if (my !== seq) return;
        showDecision(out, d, req, what ? b : null, c, whatIf, run);
      }, (err) => { if (my === seq) showError(out, err); });
    }
    if (f.channel.value) catalogRead.then(run);
    else f.customer.focus();
  }

  function exploration(x) {
    if (!x) return "";
    if (x.method === "epsilon") return "epsilon: " + (x.random_slate ? "random slate" : "best slate");
    return x.method + ": drawn " + fmtNum(x.drawn, 3) + " (mean " + fmtNum(x.mean, 3) + ")";
  }

  // rankOrder sorts candidates: those that reached the ranking by their
  // place, then the others in catalog order.
  function rankOrder(d) {
    return (d.candidates || []).slice().sort((a, b) => (a.rank || 1e9) - (b.rank || 1e9));
  }

  // showDecision shows decision d; base is the decision without the
  // what-if (null when there is none), cand the candidate bundle's.
  function showDecision(out, d, req, base, cand, whatIf, rerun) {
    const cands = rankOrder(d);
    const names = Object.assign({}, actionNames);
    for (const a of d.actions || []) names[a.id] = a.name;
    const baseRank = {};
    if (base) for (const c of base.candidates || []) baseRank[c.id] = c.rank || 0;
    const focused = document.activeElement && document.activeElement.id;
    const parts = [
      el("dl", { class: "summary" },
        el("div", {}, el("dt", {}, "Chosen"), el("dd", { id: "chosen" }, (d.actions || []).map((a) => a.id).join(", ") || "nothing")),
        el("div", {}, el("dt", {}, "Customer"), el("dd", {}, d.customer_id || "anonymous")),
        el("div", {}, el("dt", {}, "Channel"), el("dd", {}, d.channel)),
        el("div", {}, el("dt", {}, "As of"), el("dd", { id: "as-of" }, req.at ? fmtTime(req.at) : "now")),
        el("div", {}, el("dt", {}, "Control group"), el("dd", {}, d.control ? "yes (actions withheld)" : "no")),
        el("div", {}, el("dt", {}, "Took"), el("dd", {}, d.took_us + " µs")),
        el("div", {}, el("dt", {}, "Versions"), el("dd", { class: "mono" }, d.versions ? "catalog " + d.versions.catalog + " · model " + d.versions.model : ""))),
    ];
    if (d.stopped_by) parts.push(el("div", { class: "notice", id: "stopped-by", role: "status" }, "Stopped before any candidate was considered: " + d.stopped_by.policy + " (count " + d.stopped_by.count + ")."));
    if (d.state === "stale") parts.push(el("div", { class: "notice", role: "status" }, "Decided from the snapshot alone: the customer's live state could not be read."));
    if (d.withheld && d.withheld.length) parts.push(el("p", {}, "Withheld (control): " + d.withheld.map((a) => a.id).join(", ")));
    parts.push(whatIfBar(whatIf, base, rerun));

    // A what-if input: the override's value, the catalog's as placeholder.
    const input = (c, key, label, shown) => {
      const cur = whatIf.actions[c.id] && whatIf.actions[c.id][key];
      return el("input", { type: "number", class: "wi", id: "wi-" + key + "-" + c.id, step: key === "tier" ? "1" : "any", min: "0",
        max: key === "tier" ? "99" : undefined, value: cur === undefined ? "" : String(cur), placeholder: shown,
        "aria-label": label + " of " + c.id + (shown ? " (now " + shown + ")" : ""),
        onchange: (ev) => {
          const v = ev.target.value.trim();
          const o = Object.assign({}, whatIf.actions[c.id]);
          if (v === "") delete o[key]; else o[key] = Number(v);
          if (Object.keys(o).length) whatIf.actions[c.id] = o; else delete whatIf.actions[c.id];
          rerun();
        } });
    };
    const cols = ["", "#", "Action", "Stage", "Reason", "Score", "P", "C", "V", "L", "Tier", "Exploration"];
    parts.push(el("table", { id: "candidates" },
      el("caption", { class: "muted cap" }, "Score = P (propensity) × C (weight) × V (value) × L (lever); pinned tiers rank first, then score (or the exploration's draw). Type a lever, weight or tier to try it: tier 0 unpins."),
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c || el("span", { class: "sr" }, "Chosen"))))),
      el("tbody", {}, cands.map((c) => {
        const ranked = c.rank > 0;
        const over = whatIf.actions[c.id];
        const was = base ? baseRank[c.id] || 0 : c.rank || 0;
        const moved = base && was !== (c.rank || 0);
        const cls = [c.selected ? "chosen" : ranked ? "ranked" : "removed", over ? "overridden" : "", moved ? "moved" : ""].filter(Boolean).join(" ");
        return el("tr", { class: cls, "data-id": c.id, "data-stage": c.stage },
          el("td", { class: "mark" }, c.selected ? "✓" : ""),
          el("td", { class: "num" }, ranked ? c.rank : "", moved ? el("div", { class: "was" }, was ? "was " + was : "was out") : null),
          el("td", { class: "id" }, el("code", {}, c.id), names[c.id] ? el("div", { class: "muted" }, names[c.id]) : null),
          el("td", {}, el("span", { class: "stage stage-" + c.stage }, c.stage)),
          el("td", { class: "reason" }, c.reason),
          el("td", { class: "num" }, ranked ? fmtNum(c.score, 3) : ""),
          el("td", { class: "num" }, ranked ? fmtNum(c.propensity, 3) : ""),
          el("td", { class: "num" }, ranked ? fmtNum(c.weight, 2) : "", ranked ? input(c, "weight", "Weight", fmtNum(c.weight, 2)) : null),
          el("td", { class: "num" }, ranked ? fmtNum(c.value, 2) : ""),
          el("td", { class: "num" }, ranked ? fmtNum(c.lever, 2) : "", ranked ? input(c, "lever", "Lever", fmtNum(c.lever, 2)) : null),
          el("td", { class: "num" }, ranked && c.tier ? c.tier : "", ranked ? input(c, "tier", "Tier", String(c.tier || 0)) : null),
          el("td", {}, exploration(c.exploration)));
      }))));
    if (cand) parts.push(compareSection(d, cand.d, cand.info, names, cand.err));
    out.replaceChildren(...parts);
    // Keep the keyboard where it was: the table is drawn anew.
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus();
    }
  }

  // whatIfBar lists the what-if in force, takes context values, and resets.
  function whatIfBar(whatIf, base, rerun) {
    const n = Object.keys(whatIf.actions).length;
    const ctx = el("input", { id: "wi-context", name: "wi-context", value: whatIf.context, placeholder: "page=cart, …", class: "wide" });
    const desc = Object.entries(whatIf.actions).map(([id, o]) =>
      id + ": " + Object.entries(o).map(([k, v]) => k + " " + v).join(", "));
    if (whatIf.context.trim()) desc.push("context " + whatIf.context.trim());
    return el("form", { class: "bar whatif", id: "whatif-form", "aria-label": "What if", onsubmit: (ev) => {
      ev.preventDefault();
      whatIf.context = ctx.value;
      rerun();
    } },
      el("label", { for: "wi-context" }, "What-if context (replaces the request's values)", ctx),
      el("button", { type: "submit" }, "Try"),
      el("button", { type: "button", class: "secondary", id: "wi-reset", disabled: !n && !whatIf.context.trim(), onclick: () => {
        for (const k of Object.keys(whatIf.actions)) delete whatIf.actions[k];
        whatIf.context = "";
        rerun();
      } }, "Reset what-if"),
      el("p", { id: "whatif-status", class: "wi-status", role: "status" }, base
        ? "What-if (" + desc.join("; ") + "): ranks marked “was” moved against the decision without it. Nothing was recorded."
        : "No what-if: the catalog's levers, weights and tiers."));
  }

  // compareSection shows the live and the candidate bundle's decisions of
  // the same request row by row, the differences marked.
  function compareSection(live, cand, info, names, err) {
    if (err) {
      return el("section", { class: "card gap", id: "compare", "aria-labelledby": "h-compare" },
        el("h2", { id: "h-compare" }, "Live bundle beside the candidate"),
        el("div", { class: "error", role: "alert" }, "The candidate " + info.name + " cannot decide this request: " + err.message));
    }
    const lv = {}, cv = {};
    for (const c of live.candidates || []) lv[c.id] = c;
    for (const c of cand.candidates || []) cv[c.id] = c;
    const ids = [...new Set([...rankOrder(live).map((c) => c.id), ...rankOrder(cand).map((c) => c.id)])];
    const cell = (c) => !c ? ["—", ""] : [c.rank ? "#" + c.rank : "", c.stage];
    const liveChosen = (live.actions || []).map((a) => a.id).join(", ") || "nothing";
    const candChosen = (cand.actions || []).map((a) => a.id).join(", ") || "nothing";
    const diffs = ids.filter((id) => {
      const a = lv[id], b = cv[id];
      return !a || !b || (a.rank || 0) !== (b.rank || 0) || a.stage !== b.stage;
    }).length;
    return el("section", { class: "card gap", id: "compare", "aria-labelledby": "h-compare" },
      el("h2", { id: "h-compare" }, "Live bundle beside the candidate"),
      el("p", { class: "muted" }, "Candidate " + info.name + " (bundle " + info.versions.bundle + ", catalog " + info.versions.catalog +
        "), the same request and what-if, a dry run. " + (diffs ? diffs + " action" + (diffs === 1 ? "" : "s") + " placed differently, marked." : "Every action is placed the same.")),
      el("dl", { class: "summary" },
        el("div", { class: liveChosen !== candChosen ? "diff" : "" }, el("dt", {}, "Live chooses"), el("dd", { id: "compare-live" }, liveChosen)),
        el("div", { class: liveChosen !== candChosen ? "diff" : "" }, el("dt", {}, "Candidate chooses"), el("dd", { id: "compare-candidate" }, candChosen))),
      el("table", { id: "compare-table" },
        el("caption", { class: "muted cap" }, "Per action: its place (or the stage that removed it) in each bundle."),
        el("thead", {}, el("tr", {},
          el("th", { scope: "col" }, "Action"),
          el("th", { scope: "col" }, "Live place"), el("th", { scope: "col" }, "Live stage"), el("th", { scope: "col" }, "Live score"),
          el("th", { scope: "col" }, "Candidate place"), el("th", { scope: "col" }, "Candidate stage"), el("th", { scope: "col" }, "Candidate score"))),
        el("tbody", {}, ids.map((id) => {
          const a = lv[id], b = cv[id];
          const [ar, as] = cell(a), [br, bs] = cell(b);
          const differs = !a || !b || ar !== br || as !== bs;
          return el("tr", { class: differs ? "diff" : "", "data-id": id },
            el("td", { class: "id" }, el("code", {}, id), names[id] ? el("div", { class: "muted" }, names[id]) : null),
            el("td", { class: "num" }, ar), el("td", {}, as ? el("span", { class: "stage stage-" + as }, as) : ""),
            el("td", { class: "num" }, a && a.rank ? fmtNum(a.score, 3) : ""),
            el("td", { class: "num" }, br), el("td", {}, bs ? el("span", { class: "stage stage-" + bs }, bs) : ""),
            el("td", { class: "num" }, b && b.rank ? fmtNum(b.score, 3) : ""));
        }))));
  }

  window.studio.pages.explain = explainPage;
})();
