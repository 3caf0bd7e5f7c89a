// nba studio: the catalog and its journeys (/ui/catalog), as
// GET /ui/api/v1/actions serves the catalog: actions by group with their
// rules, caps, suppressions, tiers and treatments (a group's own rules and
// policies shown with the group: its actions inherit them); each journey
// drawn as its steps, with the waits between them, its entry and exit, and
// whether it locks other actions out.
"use strict";

(function () {
  const { el, api, fmtNum, showError, main } = window.studio;

  const slug = (s) => String(s).replace(/[^A-Za-z0-9_-]/g, "_");

  function catalogPage() {
    const out = el("div", { id: "catalog-out", "aria-live": "polite" }, el("p", { class: "muted" }, "Loading…"));
    main.append(el("h1", {}, "Catalog and journeys"),
      el("p", { class: "lead" }, "The catalog this sidecar serves: actions by group with what decides whether they are offered, and the journeys."),
      out);
    api("/v1/actions").then((r) => showCatalog(out, r), (err) => showError(out, err));
  }

  function limitText(l) {
    let s = "at most " + (l.max === undefined ? "?" : l.max) + " " + (l.outcome || "impression") + (l.max === 1 ? "" : "s");
    if (l.window) s += " in " + l.window;
    return s;
  }

  function suppressText(x) {
    let s = "pause " + (x.pause || "?") + " after ";
    if (x.count) s += x.count + " " + (x.after || "") + "s";
    else s += "a " + (x.after || "");
    if (x.within) s += " within " + x.within;
    if (x.without) s += " without a " + x.without;
    return s;
  }

  function rulesList(r) {
    if (!r) return [];
    const out = [];
    for (const stage of ["eligible", "applicable", "suitable"]) {
      for (const rule of r[stage] || []) out.push(el("li", {}, el("span", { class: "muted" }, stage + ": "), el("code", {}, rule)));
    }
    return out;
  }

  function policies(caps, suppress, actionCaps) {
    const li = [];
    for (const c of caps || []) li.push(el("li", {}, "cap: " + limitText(c)));
    for (const c of actionCaps || []) li.push(el("li", {}, "each action: " + limitText(c)));
    for (const x of suppress || []) li.push(el("li", {}, "suppress: " + suppressText(x)));
    return li;
  }

  const show = (v) => v === undefined || v === null ? "" : typeof v === "number" ? fmtNum(v, 4) : String(v);

  function showCatalog(out, r) {
    const cat = r.catalog || {};
    const actions = cat.actions || [];
    const groups = cat.groups || [];
    const journeys = cat.journeys || [];
    const inJourney = {};
    for (const j of journeys) for (const s of j.steps || []) inJourney[s.action] = j.id;
    const byGroup = new Map();
    for (const g of groups) byGroup.set(g.id, []);
    const loose = [];
    for (const a of actions) {
      if (a.group && byGroup.has(a.group)) byGroup.get(a.group).push(a);
      else loose.push(a);
    }
    const chans = cat.policies && cat.policies.channels ? Object.entries(cat.policies.channels) : [];
    const defaults = cat.defaults || {};
    const parts = [
      el("dl", { class: "summary" },
        el("div", {}, el("dt", {}, "Version"), el("dd", { id: "catalog-version", class: "mono" }, r.version)),
        el("div", {}, el("dt", {}, "Actions"), el("dd", {}, actions.length)),
        el("div", {}, el("dt", {}, "Groups"), el("dd", {}, groups.length)),
        el("div", {}, el("dt", {}, "Journeys"), el("dd", {}, journeys.length)),
        el("div", {}, el("dt", {}, "Fallback"), el("dd", {}, cat.fallback || "none")),
        el("div", {}, el("dt", {}, "Per decision"), el("dd", {}, cat.policies && cat.policies.max_per_decision ? "at most " + cat.policies.max_per_decision : "no limit")),
        el("div", {}, el("dt", {}, "Global holdout"), el("dd", {}, cat.holdout && cat.holdout.global ? fmtNum(cat.holdout.global * 100, 2) + "%" : "none")),
        el("div", {}, el("dt", {}, "Defaults"), el("dd", {}, Object.entries(defaults).map(([k, v]) => k + " " + show(v)).join(" · ") || "none"))),
      el("nav", { class: "toc", "aria-label": "On this page" },
        el("a", { href: "#h-journeys" }, "Journeys"), " · ",
        el("a", { href: "#h-channels" }, "Channel limits"), " · ",
        ...[...byGroup.keys()].flatMap((g, i) => [i ? " · " : "", el("a", { href: "#group-" + slug(g) }, g)]),
        loose.length ? [" · ", el("a", { href: "#group-none" }, "no group")] : null),
      el("section", { "aria-labelledby": "h-journeys" }, el("h2", { id: "h-journeys" }, "Journeys"),
        journeys.length ? journeys.map((j) => journeyCard(j, actions)) : el("p", { class: "muted" }, "No journeys.")),
      el("section", { "aria-labelledby": "h-channels" }, el("h2", { id: "h-channels" }, "Channel limits"),
        chans.length ? el("ul", { id: "channel-limits" }, chans.map(([ch, ls]) => el("li", {}, el("code", {}, ch), ": ", ls.map(limitText).join("; "))))
          : el("p", { class: "muted" }, "No channel-wide limits.")),
    ];
    for (const [gid, list] of byGroup) parts.push(groupSection(groups.find((g) => g.id === gid), list, inJourney));
    if (loose.length) parts.push(groupSection(null, loose, inJourney));
    out.replaceChildren(...parts);
    if (location.hash) {
      const t = document.getElementById(location.hash.slice(1));
      if (t) t.scrollIntoView();
    }
  }

  function groupSection(g, list, inJourney) {
    const id = g ? "group-" + slug(g.id) : "group-none";
    const facts = [];
    if (g) {
      if (g.parent) facts.push(el("li", {}, "inside ", el("a", { href: "#group-" + slug(g.parent) }, g.parent), ": inherits its rules and policies"));
      if (g.exclusive) facts.push(el("li", {}, "exclusive: at most one of its actions per decision"));
      if (g.lever !== undefined) facts.push(el("li", {}, "lever " + show(g.lever)));
      if (g.weight !== undefined) facts.push(el("li", {}, "weight ", el("code", {}, show(g.weight))));
      if (g.holdout) facts.push(el("li", {}, "holdout " + fmtNum(g.holdout * 100, 2) + "%"));
      facts.push(...rulesList(g.rules), ...policies(g.caps, g.suppress, g.action_caps));
    }
    const hid = "h-" + id;
    return el("section", { class: "card gap group", id, "aria-labelledby": hid },
      el("h2", { id: hid }, g ? "Group " + g.id : "Actions in no group"),
      facts.length ? el("ul", { class: "facts" }, facts) : null,
      el("table", { class: "actions", id: "actions-" + (g ? slug(g.id) : "none") },
        el("caption", { class: "muted cap" }, list.length + " action" + (list.length === 1 ? "" : "s") + (g ? "; each also under the group's rules and policies above." : ".")),
        el("thead", {}, el("tr", {}, ["Action", "Channels", "Tier", "Value · lever · weight", "Rules", "Caps and suppressions", "Treatments"].map((c) => el("th", { scope: "col" }, c)))),
        el("tbody", {}, list.map((a) => actionRow(a, inJourney)))));
  }

  function actionRow(a, inJourney) {
    const treatments = Object.entries(a.treatments || {});
    const when = [];
    if (a.start || a.end) when.push((a.start || "…") + " to " + (a.end || "…"));
    if (a.placements && a.placements.length) when.push("placements " + a.placements.join(", "));
    return el("tr", { "data-id": a.id },
      el("td", { class: "id" }, el("code", {}, a.id), a.name ? el("div", { class: "muted" }, a.name) : null,
        inJourney[a.id] ? el("div", {}, el("a", { href: "#journey-" + slug(inJourney[a.id]) }, "step of " + inJourney[a.id])) : null,
        when.length ? el("div", { class: "muted" }, when.join("; ")) : null),
      el("td", {}, (a.channels || []).join(", ")),
      el("td", { class: "num" }, a.tier ? String(a.tier) : "", a.pin_when ? el("div", { class: "muted" }, "when ", el("code", {}, a.pin_when)) : null),
      el("td", {}, [a.value !== undefined ? el("div", {}, "value ", el("code", {}, show(a.value))) : null,
        a.lever !== undefined ? el("div", {}, "lever " + show(a.lever)) : null,
        a.weight !== undefined ? el("div", {}, "weight ", el("code", {}, show(a.weight))) : null,
        a.holdout ? el("div", {}, "holdout " + fmtNum(a.holdout * 100, 2) + "%") : null]),
      el("td", {}, el("ul", { class: "plain" }, rulesList(a.rules))),
      el("td", {}, el("ul", { class: "plain" }, policies(a.caps, a.suppress))),
      el("td", {}, treatments.length ? el("details", {}, el("summary", {}, treatments.map(([ch]) => ch).join(", ")),
        el("dl", { class: "treatments" }, treatments.flatMap(([ch, t]) => [el("dt", {}, ch), el("dd", {}, el("code", {}, JSON.stringify(t)))]))) : ""));
  }

  // journeyCard draws a journey as a row of boxes: entry, each step with
  // the wait before it, exit.
  function journeyCard(j, actions) {
    const names = {};
    for (const a of actions) names[a.id] = a.name;
    const lock = j.mode === "lock";
    const entry = j.entry || {};
    const exit = j.exit || {};
    const entryText = [entry.event ? "on event " + entry.event : null,
      entry.match ? "where " + Object.entries(entry.match).map(([k, v]) => k + " = " + v).join(", ") : null,
      entry.rule ? "when " + entry.rule : null].filter(Boolean).join(" ") || "never (no entry)";
    const exitText = [exit.events && exit.events.length ? "on " + exit.events.join(" or ") : null,
      exit.rule ? "when " + exit.rule : null, j.timeout ? "after " + j.timeout + " in it" : null,
      "complete once the last step is delivered"].filter(Boolean).join("; ");
    const steps = j.steps || [];
    const id = "journey-" + slug(j.id);
    const flow = [el("li", { class: "node entry" }, el("div", { class: "k" }, "Entry"), el("div", {}, entryText))];
    steps.forEach((s, i) => {
      flow.push(el("li", { class: "edge", "aria-hidden": "true" }, s.wait ? "wait " + s.wait : i === 0 ? "at once" : "next decision"));
      flow.push(el("li", { class: "node step", "data-action": s.action },
        el("div", { class: "k" }, "Step " + (i + 1) + (s.wait ? " · after " + s.wait : "")),
        el("code", {}, s.action), names[s.action] ? el("div", { class: "muted" }, names[s.action]) : null));
    });
    flow.push(el("li", { class: "edge", "aria-hidden": "true" }, "then"));
    flow.push(el("li", { class: "node exit" }, el("div", { class: "k" }, "Exit"), el("div", {}, exitText)));
    return el("section", { class: "card gap journey", id, "aria-labelledby": "h-" + id },
      el("h3", { id: "h-" + id }, "Journey ", el("code", {}, j.id), " ",
        el("span", { class: "badge " + (lock ? "lock" : "free") }, lock ? "lock" : "free"),
        j.tier ? el("span", { class: "badge" }, "tier " + j.tier) : null),
      el("p", { class: "muted" }, lock
        ? "Locked: while a customer is in it, other actions are held back unless pinned" + (j.tier ? " to a tier ahead of " + j.tier : "") + "; its due step ranks at its tier."
        : "Free: its due step competes with every other action."),
      el("ol", { class: "flow", "aria-label": "Steps of journey " + j.id }, flow));
  }

  window.studio.pages.catalog = catalogPage;
})();
