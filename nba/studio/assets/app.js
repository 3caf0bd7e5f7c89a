// nba studio: one page that routes on the browser's address (every path
// under /ui/ serves it) and shows what the sidecar's API answers. It reads
// through the admin listener's /ui/api/ routes (the decision API's
// read-only routes; decisions are always dry runs) and /admin/status.
// Deep links hold their parameters in the address, which the server never
// logs: it counts only the route /ui/.
"use strict";

(function () {
  const TOKEN_KEY = "nba-admin-token";
  const main = document.getElementById("main");

  // el builds an element: attributes (on* handlers included) and children
  // (strings become text, never HTML).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) {
      if (k === undefined || k === null || k === false) continue;
      e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }

  function fmtNum(x, digits) {
    if (x === undefined || x === null) return "";
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x)) return String(x);
    return String(Number(x.toFixed(digits === undefined ? 4 : digits)));
  }

  function fmtValue(v) {
    if (v === undefined) return "";
    if (v === null) return "null";
    if (typeof v === "number") return fmtNum(v, 4);
    if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)) return fmtTime(v);
    return String(v);
  }

  function fmtTime(s) {
    if (!s) return "";
    const d = new Date(s);
    if (isNaN(d)) return s;
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
  }

  // ---- API -------------------------------------------------------------

  class AuthNeeded extends Error {}

  async function api(path, body, method) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers["Authorization"] = "Bearer " + token;
    const opts = { headers, cache: "no-store" };
    if (body !== undefined) {
      opts.method = "POST";
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method) opts.method = method;
    const r = await fetch("/ui/api" + path, opts);
    if (r.status === 401) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      authOK = false;
      throw new AuthNeeded(token ? "The admin token was refused." : "");
    }
    const data = await r.json().catch(() => null);
    if (!r.ok) {
      const e = new Error((data && data.error && data.error.message) || r.status + " " + r.statusText);
      e.status = r.status;
      e.code = data && data.error && data.error.code;
      throw e;
    }
    return data;
  }

  // tokenForm replaces the page with a request for the admin token, then
  // renders the page again.
  function tokenForm(msg) {
    const input = el("input", { id: "admin-token", type: "password", autocomplete: "current-password", required: true });
    main.replaceChildren(...[
      el("h1", {}, "Admin token"),
      el("p", { class: "lead" }, "This sidecar has an admin token (NBA_ADMIN_TOKEN): the studio needs it to read customers and decisions. It is kept in this tab only and sent as a bearer header, never in an address."),
      msg ? el("div", { class: "error", role: "alert" }, msg) : null,
      el("form", { class: "bar", id: "token-form", onsubmit: (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value);
        render();
      } }, el("label", { for: "admin-token" }, "Token", input), el("button", { type: "submit" }, "Continue")),
    ].filter(Boolean));
    input.focus();
  }

  function showError(where, err) {
    if (err instanceof AuthNeeded) { tokenForm(err.message); return; }
    where.replaceChildren(el("div", { class: "error", role: "alert" }, err.message || String(err)));
  }

  // ---- routing ---------------------------------------------------------

  function navigate(url) {
    history.pushState(null, "", url);
    render();
  }

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("a[href^='/ui/']");
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", render);

  const later = {
    funnel: ["Population funnel", "For a channel and a time: a dry-run decision for a sample of customers, how many pass each stage per action, how many end with no action, and each action's share of first place."],
    dashboard: ["Performance and learning", "Decisions per second and latency percentiles, decisions per action and channel, uplift against control with 95% intervals, and the online models' evidence."],
  };

  // authorized asks once whether the sidecar wants the admin token and
  // whether the one kept is right, so that no request of the page fails.
  let authOK = false;
  async function authorized() {
    if (authOK) return true;
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers["Authorization"] = "Bearer " + token;
    const r = await fetch("/ui/api/auth", { headers, cache: "no-store" });
    const a = await r.json();
    if (a.authorized) { authOK = true; return true; }
    if (token) sessionStorage.removeItem(TOKEN_KEY);
    tokenForm(token ? "The admin token was refused." : "");
    return false;
  }

  async function render() {
    const path = location.pathname;
    if (path !== "/ui/" && path !== "/ui" && !(await authorized().catch((e) => { main.replaceChildren(el("div", { class: "error", role: "alert" }, "Cannot reach the sidecar: " + e.message)); return false; }))) return;
    let page = "home";
    let m;
    if ((m = path.match(/^\/ui\/customers(?:\/(.*))?$/))) page = "customers";
    else if (path === "/ui/explain") page = "explain";
    else if ((m = path.match(/^\/ui\/(funnel|catalog|dashboard)\/?$/))) page = m[1];
    else if (path !== "/ui/" && path !== "/ui") page = "missing";
    for (const a of document.querySelectorAll("header nav a")) {
      const target = a.getAttribute("href").replace(/\/$/, "");
      if (target === "/ui/" + page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    main.replaceChildren();
    switch (page) {
      case "customers": {
        const id = m && m[1] ? decodeURIComponent(m[1]) : "";
        document.title = "Customer · nba studio";
        customerPage(id, new URLSearchParams(location.search).get("ns") || "");
        break;
      }
      case "explain":
        document.title = "Decision explorer · nba studio";
        studio.pages.explain(new URLSearchParams(location.search));
        break;
      case "catalog":
        document.title = "Catalog and journeys · nba studio";
        studio.pages.catalog(new URLSearchParams(location.search));
        break;
      case "funnel": case "dashboard":
        document.title = later[page][0] + " · nba studio";
        if (built(page)) {
          studio.pages[page](new URLSearchParams(location.search));
          break;
        }
        main.append(el("h1", {}, later[page][0]),
          el("div", { class: "notice", id: "not-built" }, "This page is not built yet."),
          el("p", {}, "It will show, " + later[page][1][0].toLowerCase() + later[page][1].slice(1)));
        break;
      case "missing":
        document.title = "Not found · nba studio";
        main.append(el("h1", {}, "No such page"), el("p", {}, "The studio has no page at this address. ", el("a", { href: "/ui/" }, "Start here.")));
        break;
      default:
        document.title = "nba studio";
        homePage();
    }
  }

  // ---- home ------------------------------------------------------------

  function homePage() {
    main.append(el("h1", {}, "nba studio"),
      el("p", { class: "lead" }, "What the sidecar knows about a customer and why it decides as it does. Every decision made here is a dry run: nothing is recorded."),
      el("ul", { class: "pages" },
        el("li", {}, el("a", { href: "/ui/customers/" }, "Customer"), el("p", {}, "Profile (snapshot and live values), recent contacts, journeys and holdout membership.")),
        el("li", {}, el("a", { href: "/ui/explain" }, "Decision explorer"), el("p", {}, "Every candidate of a decision: the stage that removed it and why, or its score and factors, in rank order; what if a lever, weight, tier or context were different; the live bundle beside a candidate.")),
        el("li", {}, el("a", { href: "/ui/catalog" }, "Catalog and journeys"), el("p", {}, "Actions by group with their rules, caps, tiers and treatments; each journey drawn as its steps with waits, entry and exit.")),
        ...Object.entries(later).map(([k, [title, what]]) =>
          el("li", { class: built(k) ? "" : "later" }, el("a", { href: "/ui/" + k }, title), el("p", {}, (built(k) ? "" : "Not built yet. ") + what)))));
  }

  // built reports whether a page's script (funnel.js, dashboard.js, ...)
  // registered the page in studio.pages.
  function built(page) {
    return !!studio.pages[page];
  }

  // ---- customer --------------------------------------------------------

  // status reads /admin/status once (the header's versions, the identity
  // namespaces the customer search offers).
  let statusCache = null;
  function status() {
    if (!statusCache) statusCache = fetch("/admin/status", { cache: "no-store" }).then((r) => (r.ok ? r.json() : null)).catch(() => null);
    return statusCache;
  }

  // customerPage shows a customer by id, or finds one by another
  // identifier (?ns=, when the bundle declares identity namespaces): the
  // address then becomes the customer id's, so that the identifier stays
  // out of the browser's history.
  function customerPage(id, ns) {
    const input = el("input", { id: "customer-id", name: "customer", value: id, placeholder: "c00042", required: true, autocomplete: "off" });
    const nsSelect = el("select", { id: "customer-ns", name: "ns" }, el("option", { value: "" }, "customer_id"));
    const nsLabel = el("label", { for: "customer-ns", hidden: true }, "Identifier", nsSelect);
    const out = el("div", { id: "customer-out", "aria-live": "polite" });
    const idLabel = el("label", { for: "customer-id" }, "Customer id", input);
    main.append(el("h1", {}, "Customer"),
      el("form", { class: "bar", role: "search", id: "customer-form", onsubmit: (ev) => {
        ev.preventDefault();
        const v = input.value.trim();
        if (!v) return;
        if (nsSelect.value) findCustomer(out, nsSelect.value, v);
        else navigate("/ui/customers/" + encodeURIComponent(v));
      } }, nsLabel, idLabel, el("button", { type: "submit" }, "Open")),
      out);
    status().then((st) => {
      const names = (st && st.identity_namespaces) || [];
      for (const n of names) if (!n.primary) nsSelect.append(el("option", { value: n.ns }, n.ns));
      if (nsSelect.options.length > 1) nsLabel.hidden = false;
      if (ns && [...nsSelect.options].some((o) => o.value === ns)) nsSelect.value = ns;
      const sync = () => { idLabel.firstChild.textContent = nsSelect.value ? "Value" : "Customer id"; input.placeholder = nsSelect.value ? "" : "c00042"; };
      nsSelect.addEventListener("change", sync);
      sync();
    });
    if (!id) { input.focus(); return; }
    if (ns) { findCustomer(out, ns, id); return; }
    out.append(el("p", { class: "muted" }, "Loading…"));
    api("/v1/customers/" + encodeURIComponent(id)).then((c) => showCustomer(out, c), (err) => {
      if (err.status === 404) out.replaceChildren(el("div", { class: "notice", role: "status" }, "No customer " + id + ": not in the snapshot and no live state."));
      else showError(out, err);
    });
  }

  // findCustomer opens the customer an identifier names.
  function findCustomer(out, ns, value) {
    out.replaceChildren(el("p", { class: "muted" }, "Looking up…"));
    api("/v1/customers/" + encodeURIComponent(value) + "?ns=" + encodeURIComponent(ns)).then((c) => {
      history.replaceState(null, "", "/ui/customers/" + encodeURIComponent(c.customer_id));
      document.getElementById("customer-id").value = c.customer_id;
      document.getElementById("customer-ns").value = "";
      document.getElementById("customer-ns").dispatchEvent(new Event("change"));
      showCustomer(out, c, ns);
    }, (err) => {
      if (err.status === 404) out.replaceChildren(el("div", { class: "notice", role: "status" }, "No customer has this " + ns + " identifier."));
      else showError(out, err);
    });
  }

  function table(id, caption, cols, rows, empty) {
    if (!rows.length) return el("p", { class: "muted", id: id + "-empty" }, empty);
    return el("table", { id },
      el("caption", { class: "muted cap" }, caption),
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c[0])))),
      el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) => {
        const v = c[1](r);
        return el("td", { class: c[2] || "" }, v);
      })))));
  }

  function showCustomer(out, c, foundBy) {
    const snap = c.snapshot || null;
    const live = c.live || {};
    const prof = c.profile || {};
    const names = [...new Set([...Object.keys(prof), ...Object.keys(snap ? snap.values : {}), ...Object.keys(live)])].sort();
    const holdout = c.holdout || { global: false, actions: [] };
    const channel = "web";
    out.replaceChildren(
      el("dl", { class: "summary" },
        el("div", {}, el("dt", {}, "Customer"), el("dd", { id: "customer-shown" }, c.customer_id)),
        foundBy ? el("div", {}, el("dt", {}, "Found by"), el("dd", { id: "found-by" }, foundBy)) : null,
        c.merged_from ? el("div", {}, el("dt", {}, "Merged from"), el("dd", { id: "merged-from" }, c.merged_from)) : null,
        el("div", {}, el("dt", {}, "In snapshot"), el("dd", {}, c.in_snapshot ? "yes" : "no")),
        el("div", {}, el("dt", {}, "Snapshot as of"), el("dd", {}, snap ? fmtTime(snap.as_of) : "—")),
        el("div", {}, el("dt", {}, "Live state"), el("dd", {}, c.has_live_state ? "yes" : "no")),
        el("div", {}, el("dt", {}, "Global holdout"), el("dd", { id: "holdout-global" }, holdout.global ? "in the control group" : "no")),
        el("div", {}, el("dt", {}, "Action holdouts"), el("dd", {}, holdout.actions.length ? holdout.actions.join(", ") : "none")),
        el("div", {}, el("dt", {}, "Explain"), el("dd", {}, el("a", { href: "/ui/explain?customer=" + encodeURIComponent(c.customer_id) + "&channel=" + encodeURIComponent(channel) }, "a decision on " + channel)))),
      el("div", { class: "grid" },
        el("section", { class: "card", "aria-labelledby": "h-profile" }, el("h2", { id: "h-profile" }, "Profile"),
          table("profile", "Decisions see the live value when it is newer than the snapshot (or the field is live only).",
            [["Field", (n) => el("code", {}, n)],
             ["Decisions see", (n) => fmtValue(prof[n])],
             ["Snapshot", (n) => snap ? fmtValue(snap.values[n]) : ""],
             ["Live", (n) => live[n] ? fmtValue(live[n].value) + (live[n].applied ? "" : " (older than the snapshot)") : ""],
             ["Changed at", (n) => live[n] ? fmtTime(live[n].changed_at) : "", "t"]],
            names, "No profile values.")),
        el("div", {},
          suppressionsSection(c.suppressions || []),
          el("section", { class: "card gap", "aria-labelledby": "h-contacts" }, el("h2", { id: "h-contacts" }, "Recent contacts"),
            table("contacts", "Newest first.",
              [["When", (h) => fmtTime(h.ts), "t"], ["Action", (h) => el("code", {}, h.action_id)], ["Channel", (h) => h.channel],
               ["Outcome", (h) => h.outcome], ["Value", (h) => fmtNum(h.value, 2), "num"]],
              (c.history || []).slice().sort((a, b) => (a.ts < b.ts ? 1 : -1)), "No contacts recorded.")),
          timelineSection(c.history || []),
          capsSection(c.caps || []),
          el("section", { class: "card gap", "aria-labelledby": "h-journeys" }, el("h2", { id: "h-journeys" }, "Journeys"),
            table("journeys", "Journeys the customer is in or has left.",
              [["Journey", (j) => el("code", {}, j.journey)], ["Mode", (j) => j.mode || ""], ["Status", (j) => j.status], ["Step", (j) => fmtNum(j.step), "num"],
               ["Entered", (j) => fmtTime(j.entered_at)], ["Step since", (j) => fmtTime(j.step_at)],
               ["Next step", (j) => (j.next_action ? el("code", {}, j.next_action) : "")], ["Due", (j) => fmtTime(j.due_at)]],
              c.journeys || [], "In no journey.")))),
      el("div", { class: "grid gap" }, consentSection(c.consent || []), c.identifiers ? identifiersSection(c.identifiers) : null));
  }

  // timelineSection plots the customer's contacts over time, one row per
  // outcome (an impression is a decision delivered), with Chart.js.
  let timelineChart = null;
  function timelineSection(history) {
    if (timelineChart) { timelineChart.destroy(); timelineChart = null; }
    if (!history.length || !window.Chart) return null;
    const outcomes = ["impression", "click", "accept", "convert", "reject", "dismiss"].filter((o) => history.some((h) => h.outcome === o));
    for (const h of history) if (!outcomes.includes(h.outcome)) outcomes.push(h.outcome);
    const canvas = el("canvas", { id: "timeline-chart", role: "img", "aria-label": "Timeline: the customer's contacts over time by outcome (the table of recent contacts holds them)" });
    const colors = ["#2457c5", "#0b7285", "#2b8a3e", "#e67700", "#c2255c", "#862e9c"];
    const sec = el("section", { class: "card gap", "aria-labelledby": "h-timeline" }, el("h2", { id: "h-timeline" }, "Timeline"),
      el("div", { class: "chart short" }, canvas));
    window.Chart.defaults.animation = false;
    const xs = history.map((h) => Date.parse(h.ts));
    const lo = Math.min(...xs), hi = Math.max(...xs), pad = Math.max((hi - lo) * 0.05, 3600e3);
    timelineChart = new window.Chart(canvas, {
      type: "scatter",
      data: { datasets: outcomes.map((o, i) => ({ label: o, backgroundColor: colors[i % colors.length], pointRadius: 5,
        data: history.filter((h) => h.outcome === o).map((h) => ({ x: Date.parse(h.ts), y: outcomes.length - i, action: h.action_id })) })) },
      options: { maintainAspectRatio: false,
        scales: { x: { type: "linear", min: lo - pad, max: hi + pad, ticks: { callback: (v) => fmtTime(new Date(v).toISOString()), maxTicksLimit: 4 } },
          y: { min: 0.5, max: outcomes.length + 0.5, ticks: { stepSize: 1, callback: (v) => outcomes[outcomes.length - v] || "" } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => c.raw.action + " · " + c.dataset.label + " · " + fmtTime(new Date(c.raw.x).toISOString()) } } } },
    });
    return sec;
  }

  function capsSection(caps) {
    const cols = [["Policy", (x) => x.policy], ["Count", (x) => x.count, "num"], ["Max", (x) => x.max, "num"],
      ["Headroom", (x) => x.headroom, "num"], ["Frees at", (x) => (x.frees_at ? fmtTime(x.frees_at) : x.headroom === 0 ? "—" : ""), "t"]];
    const used = caps.filter((x) => x.count > 0).sort((a, b) => a.headroom - b.headroom || b.count - a.count);
    const rest = caps.filter((x) => x.count === 0);
    return el("section", { class: "card gap", "aria-labelledby": "h-caps" }, el("h2", { id: "h-caps" }, "Caps and channel limits"),
      table("caps", "Counted now; a cap with no headroom holds until it frees.", cols, used, "No cap has counted a contact yet."),
      rest.length ? el("details", {}, el("summary", {}, rest.length + " more with nothing counted"),
        table("caps-unused", "", cols, rest, "")) : null);
  }

  // suppressionsSection lists the pauses in force: which action, by which
  // policy (and the group it comes from), the outcomes that started it,
  // since when and until when.
  function suppressionsSection(sups) {
    const plural = (n, o) => n + " " + o + (n === 1 ? "" : "s");
    const counted = (x) => {
      if (!x.counted) return plural(x.count, x.after);
      if (x.counted.length === 1) return plural(1, x.after);
      return el("details", {}, el("summary", {}, plural(x.counted.length, x.after)),
        el("ol", { class: "plain" }, x.counted.map((at) => el("li", {}, fmtTime(at)))));
    };
    return el("section", { class: "card", "aria-labelledby": "h-suppressions" }, el("h2", { id: "h-suppressions" }, "Active suppressions"),
      table("suppressions", "Actions paused for this customer now, as a decision finds them, and when each pause ends.",
        [["Action", (x) => el("code", {}, x.action_id)],
         ["Policy", (x) => x.policy.replace(/^action [^:]*: /, "") + (x.group ? " (group " + x.group + ")" : "")],
         ["Counted", counted], ["Since", (x) => (x.since ? fmtTime(x.since) : "—")], ["Until", (x) => (x.until ? fmtTime(x.until) : "unknown"), "until"]],
        sups, "No suppression in force."));
  }

  // consentSection shows the consent per channel and purpose: the status
  // in force, whether it is the catalog's default, and the audit trail.
  function consentSection(rows) {
    const trail = (x) => {
      const t = x.trail || [];
      if (!t.length) return "";
      return el("details", {}, el("summary", {}, t.length + (t.length === 1 ? " change" : " changes")),
        el("ol", { class: "plain" }, t.map((c) => el("li", {}, fmtTime(c.ts) + " · " + c.status + (c.source ? " · " + c.source : "")))));
    };
    return el("section", { class: "card gap", "aria-labelledby": "h-consent" }, el("h2", { id: "h-consent" }, "Consent"),
      table("consent", "Per channel and purpose: the status in force (a denied one removes the channel's actions of that purpose).",
        [["Channel", (x) => x.channel], ["Purpose", (x) => x.purpose],
         ["Status", (x) => el("span", { class: "consent-" + x.status }, x.status)],
         ["Since", (x) => (x.default ? "catalog default" : fmtTime(x.changed_at))], ["Source", (x) => x.source || ""], ["Trail", trail]],
        rows, "The catalog declares no consent purpose."));
  }

  // identifiersSection lists the profile's identifiers (identity
  // stitching) with their provenance.
  function identifiersSection(ids) {
    return el("section", { class: "card gap", "aria-labelledby": "h-identifiers" }, el("h2", { id: "h-identifiers" }, "Identifiers"),
      table("identifiers", "Linked into this profile; a hashed namespace shows its keyed hash.",
        [["Namespace", (x) => x.ns], ["Value", (x) => el("code", { class: "id-value" }, x.value)], ["First seen", (x) => fmtTime(x.first_seen)],
         ["Last used", (x) => fmtTime(x.last_used)], ["Source", (x) => x.source || ""]],
        ids, "No identifier linked."));
  }

  // ---- header ----------------------------------------------------------

  status().then((st) => {
    if (!st || !st.versions) return;
    document.getElementById("versions").textContent =
      "bundle " + st.versions.bundle + " · catalog " + st.versions.catalog + " · snapshot " + st.versions.snapshot;
  }).catch(() => {});

  // The pages in their own files (explain.js, catalog.js, ...) use these
  // and register themselves in studio.pages. They run after this file
  // (deferred scripts run in order, the document already parsed), and
  // DOMContentLoaded fires once all of them have: the first render waits
  // for it, or a quick answer to its first request could find a page not
  // yet registered.
  // channels lists the catalog's channels (read once), and fills
  // actionNames (id → display name) on the way.
  let channelsCache = null;
  const actionNames = {};
  async function channels() {
    if (channelsCache) return channelsCache;
    const cat = await api("/v1/actions");
    const set = new Set();
    for (const a of (cat.catalog && cat.catalog.actions) || []) {
      if (a.name) actionNames[a.id] = a.name;
      for (const ch of a.channels || []) set.add(ch);
    }
    channelsCache = [...set].sort();
    return channelsCache;
  }

  const studio = window.studio = window.studio || {};
  Object.assign(studio, { el, api, fmtNum, fmtValue, fmtTime, showError, navigate, table, AuthNeeded, main, channels, actionNames });
  studio.pages = studio.pages || {};

  document.addEventListener("DOMContentLoaded", render);
})();
