/**
 * The status page served at `/`: one static HTML document with inline CSS and JS, no
 * build step and no external resources (it works on a director without internet). The
 * script polls `/status` every 1.5 s and redraws; when the daemon stops answering it says
 * so and keeps the last picture, greyed out.
 *
 * Hooks for tests and scrapers: every real server row carries
 * `data-rs="<service>/<address>:<port>"` and `data-health="up|down|drained"`, its figures
 * `data-fig="rate|sessions|bytes|errors|checks|in-state|downtime"`; the role badge is
 * `#role` (`data-role`, `data-degraded="1"` while the cluster is not whole), the warning
 * strip `#warnings` (one `li[data-warning=<kind>]` each), the last refresh `#updated`.
 *
 * Kept free of backquotes and `${` so it can live in this template string untouched,
 * except for one interpolation: the source of statusWarnings (src/api/warnings.ts), so
 * the warning strip says exactly what `vigil status` says. Inside this template a
 * backslash must be doubled (`\\b`, `\\u2192`): a single `\b` becomes a backspace.
 *
 * Times are shown in UTC, `2026-01-01 12:00:00Z`, as `vigil status` prints them.
 */
import { peerCanTakeOver, statusWarnings } from './warnings.js';

export const STATUS_PAGE = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vigil</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --fg:#1d232b; --muted:#6a7380; --line:#e3e6ea;
          --ok:#1f8a4c; --bad:#c62828; --warn:#b26a00; --info:#2f5fb3; }
  * { box-sizing: border-box; }
  body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--fg); }
  header { display:flex; align-items:center; gap:16px; flex-wrap:wrap; padding:12px 20px; background:#1d232b; color:#fff; }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  header .meta { color:#b9c1cc; font-size:13px; }
  header .right { margin-left:auto; font-size:12px; color:#b9c1cc; }
  .badge { display:inline-block; padding:2px 10px; border-radius:10px; font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  .role-active { background:var(--ok); color:#fff; } .role-standby { background:var(--info); color:#fff; }
  .role-maintenance { background:var(--warn); color:#fff; } .role-init, .role-unknown { background:#59616b; color:#fff; }
  main { padding:16px 20px; display:grid; gap:16px; grid-template-columns: repeat(auto-fit, minmax(min(560px, 100%), 1fr)); }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; overflow-x:auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); margin:0 0 8px; }
  table { border-collapse:collapse; width:100%; font-variant-numeric: tabular-nums; }
  th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; white-space:nowrap; }
  th { font-weight:600; color:var(--muted); font-size:12px; }
  td.num, th.num { text-align:right; }
  td.reason { white-space:normal; color:var(--muted); max-width:420px; overflow-wrap:anywhere; }
  tr.svc td { background:#eef1f5; font-weight:600; border-top:2px solid var(--line); }
  .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:13px; }
  .up { color:var(--ok); font-weight:600; } .down { color:var(--bad); font-weight:700; } .drained { color:var(--warn); font-weight:600; }
  tr[data-health="down"] td { background:#fdecec; }
  .muted { color:var(--muted); } .empty { color:var(--muted); font-style:italic; padding:6px 0; }
  #banner { display:none; padding:8px 20px; background:var(--bad); color:#fff; font-weight:600; }
  #warnings { display:none; margin:0; padding:8px 20px 8px 38px; background:#fff4e0; color:#6b3f00; border-bottom:2px solid var(--warn); font-weight:600; overflow-wrap:anywhere; }
  #warnings.alarm { background:#fdecec; color:#8e1b1b; border-bottom-color:var(--bad); }
  #warnings li { padding:1px 0; }
  .badge.degraded { background:var(--warn); color:#fff; box-shadow:0 0 0 2px #fff4e0 inset; }
  .badge.alarm { background:var(--bad); color:#fff; }
  body.stale main { opacity:.55; }
  ul.history { list-style:none; margin:0; padding:0; max-height:320px; overflow:auto; }
  ul.history li { padding:3px 0; border-bottom:1px solid var(--line); display:grid; grid-template-columns: 170px 70px minmax(0, 1fr); gap:10px; overflow-wrap:anywhere; }
  ul.history .when { color:var(--muted); } ul.history .kind { font-weight:600; }
  @media (max-width: 600px) {
    header, main { padding-left:8px; padding-right:8px; }
    header .right { margin-left:0; }
    section { padding:10px 8px; }
    ul.history li { grid-template-columns: minmax(0, 1fr) auto; }
    ul.history li > span:last-child { grid-column: 1 / -1; }
  }
  .k-role { color:var(--info); } .k-health { color:var(--bad); } .k-health-up { color:var(--ok); } .k-control { color:var(--warn); } .k-config, .k-reconcile { color:var(--muted); }
</style>
</head>
<body>
<header>
  <h1>vigil <span id="node" class="mono"></span></h1>
  <span id="role" class="badge role-unknown">loading</span>
  <span class="meta" id="prio"></span>
  <span class="right">updated <span id="updated">never</span> &middot; refreshes every 1.5 s &middot; <a href="status" style="color:#b9c1cc">JSON</a> &middot; <a href="metrics" style="color:#b9c1cc">metrics</a></span>
</header>
<div id="banner"></div>
<ul id="warnings" role="alert"></ul>
<main>
  <section class="wide"><h2>Cluster peers and links</h2><div id="peers"></div></section>
  <section class="wide"><h2>Virtual IPs</h2><div id="vips"></div></section>
  <section class="wide"><h2>Virtual services and real servers</h2><div id="services"></div></section>
  <section class="wide"><h2>Recent events</h2><div id="history"></div></section>
</main>
<script>
"use strict";
var POLL_MS = 1500;
var FORWARD = { dr: "Route", tun: "Tunnel", nat: "Masq" };
var COLS = 16; /* columns of the real server table */
/* statusWarnings from src/api/warnings.ts, the same function vigil status uses */
${peerCanTakeOver.toString()}
${statusWarnings.toString()}

function h(tag, attrs, children) {
  var el = document.createElement(tag);
  if (attrs) for (var k in attrs) {
    if (attrs[k] === undefined || attrs[k] === null) continue;
    if (k === "class") el.className = attrs[k]; else el.setAttribute(k, String(attrs[k]));
  }
  (children || []).forEach(function (c) {
    if (c === null || c === undefined) return;
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  });
  return el;
}
function table(headers, rows) {
  return h("table", null, [
    h("thead", null, [h("tr", null, headers.map(function (x) { return h("th", x.num ? { class: "num" } : null, [x.t || x]); }))]),
    h("tbody", null, rows)
  ]);
}
function hostPort(a, p) { return (a.indexOf(":") >= 0 ? "[" + a + "]" : a) + (p === null || p === undefined ? "" : ":" + p); }
function replace(id, node) { var el = document.getElementById(id); el.textContent = ""; el.appendChild(node); }
function empty(text) { return h("div", { class: "empty" }, [text]); }
function fmtRtt(ms) { return ms === null || ms === undefined ? "-" : (ms < 1 ? ms.toFixed(3) : ms.toFixed(1)) + " ms"; }
/* UTC, as vigil status prints it: 2026-01-01 12:00:00Z */
function fmtTime(iso) { var d = new Date(iso); return isNaN(d) ? iso : d.toISOString().replace("T", " ").replace(/\\.\\d+Z$/, "Z"); }
function fmtSecs(s) {
  if (s === null || s === undefined) return "-";
  var d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return d ? d + "d " + hh + "h" : hh ? hh + "h " + m + "m" : m ? m + "m " + (s % 60) + "s" : s + "s";
}
function fmtBytes(n) {
  if (n === null || n === undefined) return "-";
  var u = ["B", "kB", "MB", "GB", "TB"], i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + u[i];
}
function num(v) { return v === null || v === undefined ? "-" : String(v); }
function fmtUptime(s) {
  var d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || hh ? hh + "h " : "") + m + "m " + (s % 60) + "s";
}
function healthOf(rs) { return rs.drained ? "drained" : rs.healthy ? "up" : "down"; }

/* cluster.mode ecmp: the peer's forwarding-table digest against ours */
function tableCell(t) {
  if (!t || t.match === null) return h("span", { class: "muted" }, ["?"]);
  if (t.match) return h("span", { class: "up" }, ["same"]);
  return h("span", { class: t.mismatched ? "down" : "muted", title: "differs since " + fmtTime(t.since) }, [(t.mismatched ? "MISMATCH " : "different ") + (t.digest || "")]);
}
function renderPeers(doc) {
  if (!doc.peers.length) return empty("no peers configured (a cluster of one)");
  var tables = doc.peers.some(function (p) { return !!p.table; });
  var rows = [];
  doc.peers.forEach(function (p) {
    var links = p.links.length ? p.links : [{ name: "-", local: "", remote: "", up: false, rttMs: null, lastHeardMsAgo: null }];
    links.forEach(function (l, i) {
      rows.push(h("tr", { "data-peer": p.name }, [
        h("td", null, i === 0 ? [h("b", null, [p.name])] : []),
        h("td", null, i === 0 ? [h("span", { class: p.alive ? "up" : "down" }, [p.alive ? "alive" : "DEAD"])] : []),
        h("td", null, i === 0 ? [h("span", { class: "badge role-" + p.role }, [p.role])] : []),
        h("td", { class: "num" }, [i === 0 && p.priority !== null ? p.priority : ""]),
        h("td", { class: "mono" }, [l.name]),
        h("td", { class: "mono" }, [l.local && l.remote ? l.local + " \\u2192 " + l.remote : ""]),
        h("td", null, [h("span", { class: l.up ? "up" : "down" }, [l.up ? "up" : "down"])]),
        h("td", { class: "num" }, [fmtRtt(l.rttMs)]),
        h("td", { class: "num muted" }, [l.lastHeardMsAgo === null || l.lastHeardMsAgo === undefined ? "-" : Math.round(l.lastHeardMsAgo) + " ms ago"])
      ].concat(tables ? [h("td", { class: "mono", "data-table": i === 0 && p.table ? (p.table.mismatched ? "mismatch" : p.table.match === null ? "unknown" : p.table.match ? "same" : "different") : null }, i === 0 ? [tableCell(p.table)] : [])] : [])));
    });
  });
  return table(["Peer", "State", "Role", { t: "Prio", num: 1 }, "Link", "Local \\u2192 remote", "Link state", { t: "RTT", num: 1 }, { t: "Last heard", num: 1 }].concat(tables ? ["Table"] : []), rows);
}

function renderVips(doc) {
  if (!doc.vips.length) return empty("no VIPs configured");
  return table(["Address", "Interface", "Owner", "Here"], doc.vips.map(function (v) {
    return h("tr", { "data-vip": v.address }, [
      h("td", { class: "mono" }, [v.address + "/" + v.prefix]),
      h("td", { class: "mono" }, [v.interface]),
      h("td", null, [v.owner || h("span", { class: "down" }, ["nobody"])]),
      h("td", null, [h("span", { class: v.owned ? "up" : "muted" }, [v.owned ? "yes" : "no"])])
    ]);
  }));
}

function renderServices(doc) {
  if (!doc.services.length) return empty("no virtual services");
  var rows = [];
  doc.services.forEach(function (s) {
    var flags = [];
    if (s.persistence) flags.push("persistent " + s.persistence.timeoutS + (s.persistence.netmask ? " mask " + s.persistence.netmask : ""));
    if (s.quiescent) flags.push("quiescent");
    if (s.sorryServerActive) flags.push("SORRY SERVER");
    var where = s.fwmark !== null && s.fwmark !== undefined ? "FWM " + s.fwmark : s.protocol.toUpperCase() + " " + hostPort(s.vip, s.port);
    var healthy = s.realServers.filter(function (r) { return r.healthy && !r.drained; }).length;
    rows.push(h("tr", { class: "svc", "data-service": s.name }, [
      h("td", { colspan: 2 }, [s.name]),
      h("td", { class: "mono", colspan: 4, "data-testid": "service-flags" }, [where + "  " + s.scheduler + (flags.length ? "  " + flags.join(", ") : "")]),
      h("td", { colspan: 2 }, [s.dataplane]),
      h("td", { colspan: COLS - 8 }, [h("span", { class: healthy === 0 && s.realServers.length ? "down" : "muted" }, [healthy + "/" + s.realServers.length + " healthy"])])
    ]));
    if (!s.realServers.length) rows.push(h("tr", null, [h("td", { colspan: COLS, class: "empty" }, ["no real servers"])]));
    s.realServers.forEach(function (r) {
      var hs = healthOf(r);
      var c = r.connections;
      var lc = r.lastCheck;
      var st = r.stats || null;
      var sf = r.state || null;
      rows.push(h("tr", { "data-rs": s.name + "/" + hostPort(r.address, r.port), "data-health": hs }, [
        h("td", { class: "muted" }, ["\\u2192"]),
        h("td", { class: "mono" }, [hostPort(r.address, r.port)]),
        h("td", null, [FORWARD[s.forward] || s.forward]),
        h("td", { class: "num" }, [r.weight + (r.weight !== r.configuredWeight ? " (of " + r.configuredWeight + ")" : "")]),
        h("td", { class: "num" }, [c ? c.active : "-"]),
        h("td", { class: "num" }, [c ? c.inactive : "-"]),
        h("td", { class: "num", "data-fig": "rate" }, [st ? st.cps + " / " + num(st.cpsMax) : "-"]),
        h("td", { class: "num", "data-fig": "sessions" }, [c ? c.total : "-"]),
        h("td", { class: "num", "data-fig": "bytes" }, [st ? fmtBytes(st.bytesIn) + " / " + fmtBytes(st.bytesOut) : "-"]),
        h("td", { class: "num", "data-fig": "errors" }, [st ? num(st.connectErrors) : "-"]),
        h("td", { class: "num", "data-fig": "checks" }, [sf ? sf.failedChecks : "-"]),
        h("td", { class: "num", "data-fig": "in-state" }, [sf ? fmtSecs(sf.inStateS) : "-"]),
        h("td", { class: "num", "data-fig": "downtime" }, [sf ? fmtSecs(sf.downtimeS) : "-"]),
        h("td", null, [h("span", { class: hs, "data-testid": "health" }, [hs === "down" ? "DOWN" : hs])]),
        h("td", { class: "muted" }, [lc ? fmtTime(lc.at) + " (" + lc.durationMs.toFixed(1) + " ms)" : "not checked yet"]),
        h("td", { class: "reason" }, [lc ? lc.reason : ""])
      ]));
    });
  });
  return table(["", "Real server", "Forward", { t: "Weight", num: 1 }, { t: "ActiveConn", num: 1 }, { t: "InActConn", num: 1 },
    { t: "Rate cur / max", num: 1 }, { t: "Sessions", num: 1 }, { t: "Bytes in / out", num: 1 }, { t: "Conn errors", num: 1 },
    { t: "Failed checks", num: 1 }, { t: "In state", num: 1 }, { t: "Downtime", num: 1 }, "Health", "Last check", "Reason"], rows);
}

function renderHistory(doc) {
  if (!doc.history.length) return empty("nothing yet");
  return h("ul", { class: "history" }, doc.history.slice(0, 50).map(function (e) {
    return h("li", { "data-kind": e.kind }, [
      h("span", { class: "when" }, [fmtTime(e.at)]),
      h("span", { class: "kind k-" + e.kind + (e.kind === "health" && /^\\S+ \\S+ up:/.test(e.message) ? "-up" : "") }, [e.kind]),
      h("span", null, [e.message])
    ]);
  }));
}

function render(doc) {
  document.title = "vigil " + doc.node + " \\u2014 " + doc.role;
  document.getElementById("node").textContent = doc.node;
  var warnings = statusWarnings(doc);
  var cluster = warnings.filter(function (w) { return w.kind === "no-active" || w.kind === "split-brain" || w.kind === "dead-peer" || w.kind === "no-standby"; });
  var alarm = warnings.some(function (w) { return w.kind === "no-active" || w.kind === "split-brain" || w.kind === "service-down"; });
  var role = document.getElementById("role");
  /* never a plain green ACTIVE while the cluster is not whole */
  role.textContent = doc.role + (cluster.length ? " \\u2014 " + (cluster.some(function (w) { return w.kind === "split-brain"; }) ? "split brain" : cluster.some(function (w) { return w.kind === "dead-peer"; }) ? "peer dead" : cluster.some(function (w) { return w.kind === "no-active"; }) ? "no active" : "no standby") : "");
  role.className = "badge role-" + doc.role + (cluster.length ? (cluster.some(function (w) { return w.kind === "split-brain" || w.kind === "no-active"; }) ? " alarm" : " degraded") : "");
  role.setAttribute("data-degraded", cluster.length ? "1" : "0");
  role.setAttribute("data-role", doc.role);
  var strip = document.getElementById("warnings");
  strip.textContent = "";
  warnings.forEach(function (w) { strip.appendChild(h("li", { "data-warning": w.kind }, [w.message])); });
  strip.className = alarm ? "alarm" : "";
  strip.style.display = warnings.length ? "block" : "none";
  document.getElementById("prio").textContent = "priority " + doc.priority + (doc.effectivePriority !== doc.priority ? " (effective " + doc.effectivePriority + ")" : "") +
    " \\u00b7 up " + fmtUptime(doc.uptimeSeconds) + " \\u00b7 " + (doc.ready ? "ready" : "not ready yet") + " \\u00b7 v" + doc.version;
  replace("peers", renderPeers(doc));
  replace("vips", renderVips(doc));
  replace("services", renderServices(doc));
  replace("history", renderHistory(doc));
  document.getElementById("updated").textContent = fmtTime(new Date().toISOString());
}

function poll() {
  fetch("status", { cache: "no-store" }).then(function (res) {
    if (!res.ok) throw new Error("HTTP " + res.status);
    return res.json();
  }).then(function (doc) {
    render(doc);
    document.body.classList.remove("stale");
    document.getElementById("banner").style.display = "none";
  }).catch(function (err) {
    document.body.classList.add("stale");
    var b = document.getElementById("banner");
    b.textContent = "vigil is not answering (" + err.message + "); showing the last known state";
    b.style.display = "block";
  }).then(function () { setTimeout(poll, POLL_MS); });
}
poll();
</script>
</body>
</html>
`;
