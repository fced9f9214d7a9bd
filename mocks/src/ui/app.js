// The idprop page: configuration, and the journal as a live sequence
// diagram. Everything it loads comes from the stack itself (no CDN).
"use strict";
const LANES = ["Application", "Identity provider", "UAA", "Destination service", "Connectivity proxy", "Cloud Connector", "Backend"];
// The lanes by name, so a new lane moves no number below.
const L = Object.fromEntries(LANES.map((name, i) => [name, i]));
const LANE_OF = {
  "identity-provider": L["Identity provider"],
  uaa: L.UAA, "token-server": L.UAA, gateway: L.UAA,
  destination: L["Destination service"],
  "connectivity-proxy": L["Connectivity proxy"],
  backend: L.Backend, api: L.Backend, app: L.Backend,
};
let jwks = null, seen = new Map(), lastSeq = 0;

const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "class" ? (e.className = v) : e.setAttribute(k, v);
  for (const kid of kids) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid ?? "")));
  return e;
};
const table = (rows) => el("table", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c)))));
const b64url = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));

function samlXml(v) {
  try {
    const text = new TextDecoder().decode(b64url(v.replace(/=+$/, "")));
    return text.includes("Assertion") ? text.replace(/></g, ">\n<") : null;
  } catch {
    return null;
  }
}

async function verify(token) {
  try {
    const [h, p, s] = token.split(".");
    const header = JSON.parse(new TextDecoder().decode(b64url(h)));
    if (header.alg !== "RS256") return `not verified: alg ${header.alg}`;
    const jwk = (jwks?.keys || []).find((k) => k.kid === header.kid);
    if (!jwk) return `not verified: unknown kid ${header.kid}`;
    const key = await crypto.subtle.importKey("jwk", { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RS256", ext: true }, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
    const ok = await crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, b64url(s), new TextEncoder().encode(`${h}.${p}`));
    return ok ? "signature verified (UAA key " + header.kid + ")" : "signature INVALID";
  } catch (e) {
    return "not verified: " + e.message;
  }
}

function decodeJwt(token) {
  try {
    const [h, p] = token.split(".");
    return { header: JSON.parse(new TextDecoder().decode(b64url(h))), claims: JSON.parse(new TextDecoder().decode(b64url(p))) };
  } catch { return null; }
}

function tokenIn(value) {
  const m = /(?:Bearer\s+)?(eyJ[\w-]+\.[\w-]+\.[\w-]*)/.exec(value || "");
  return m ? m[1] : null;
}

async function detail(e) {
  const box = el("div", { class: "detail" });
  box.append(el("div", { class: "mono" }, `${e.method} ${e.tls ? "https" : "http"}://${e.host}${e.path} → ${e.status || "(no answer)"} in ${e.latency_ms} ms` + (e.note ? ` — ${e.note}` : "")));
  if (e.client_cert) box.append(el("p", {}, el("span", { class: "cert" }, `TLS client certificate: ${e.client_cert.subject} — issued by ${e.client_cert.issuer}, valid until ${e.client_cert.not_after}`)));
  if (e.ssl_client_cert) box.append(el("p", {}, el("span", { class: "cert" }, `SSL_CLIENT_CERT: ${e.ssl_client_cert.subject} — issued by ${e.ssl_client_cert.issuer}, valid until ${e.ssl_client_cert.not_after}`)));
  const rows = [];
  for (const [k, v] of e.headers) {
    const t = tokenIn(v);
    const cell = el("div", { class: "mono" }, t ? v.replace(t, t.slice(0, 16) + "…") : v);
    if (t) {
      const d = decodeJwt(t);
      const state = el("div", { class: "muted" }, "checking signature…");
      verify(t).then((s) => { state.textContent = s; state.className = s.startsWith("signature verified") ? "ok" : "bad"; });
      cell.append(state, el("pre", { class: "mono" }, JSON.stringify(d?.claims ?? {}, null, 1)));
    }
    rows.push([k, cell]);
  }
  for (const [k, v] of e.form) {
    const cell = el("div", { class: "mono" }, tokenIn(v) ? v.slice(0, 24) + "…" : v);
    // A saml2-bearer assertion (base64url XML, RFC 7522): shown decoded.
    const xml = k === "assertion" && !tokenIn(v) ? samlXml(v) : null;
    if (xml) cell.replaceChildren(el("div", { class: "muted" }, "SAML 2.0 assertion, decoded"), el("pre", { class: "mono" }, xml));
    rows.push([`form ${k}`, cell]);
  }
  for (const [k, v] of e.query) rows.push([`query ${k}`, v]);
  box.append(table(rows));
  return box;
}

// The proxy refuses these itself (CP-1..CP-3); anything else went on to
// the Cloud Connector, which decided the rest.
const PROXY_ONLY = new Set([400, 405, 407, 431, 503]);

// One arrow from lane `from` to lane `to`, its label above it, wrapping
// within the lanes it spans.
function arrowRow(from, to, text, bad, extraClass = "") {
  const row = el("div", { class: "hop-row " + extraClass });
  const left = to < from;
  const [a, b] = left ? [to, from] : [from, to];
  const label = el("div", { class: "label", title: text }, text);
  label.style.gridColumn = `${a + 1} / ${b + 2}`;
  const arrow = el("div", { class: "arrow" + (left ? " left" : "") + (bad ? " bad" : "") });
  // From the middle of one lane to the middle of the other.
  const span = b - a + 1;
  arrow.style.gridColumn = `${a + 1} / ${b + 2}`;
  arrow.style.marginLeft = arrow.style.marginRight = `calc(100% / ${2 * span})`;
  row.append(label, arrow);
  return row;
}

function certText(e) {
  const parts = [];
  // The handshake's certificate (the connector's system certificate on the
  // backend hop) and the identity the connector put in SSL_CLIENT_CERT.
  if (e.client_cert) parts.push(`${e.component === "backend" ? "TLS" : "certificate"} ${e.client_cert.subject}`);
  if (e.ssl_client_cert) parts.push(`SSL_CLIENT_CERT certificate ${e.ssl_client_cert.subject}`);
  else if ((e.headers || []).some(([k, v]) => k === "ssl_client_cert" && v === "")) parts.push("SSL_CLIENT_CERT empty");
  return parts.length ? " — " + parts.join(" — ") : "";
}

async function addHop(e) {
  const lane = LANE_OF[e.component] ?? L.UAA;
  // The connector calls the backend and fetches the trusted issuers' keys
  // (the UAA's token_keys, an identity provider's certs).
  const keys = (e.component === "uaa" && e.path.endsWith("/token_keys")) ||
    (e.component === "identity-provider" && e.path.endsWith("/certs"));
  const from = e.component === "backend" || keys ? L["Cloud Connector"] : L.Application;
  const hop = el("div", { class: "hop", id: "hop-" + e.seq });
  const bad = e.status >= 400 || e.status === 0;
  const rows = [arrowRow(from, lane, `${e.status || "…"} ${e.method} ${e.host}${e.path}${certText(e)}`, bad)];
  // The tunnel between the Connectivity proxy and the Cloud Connector: what
  // the connector decided for this request.
  if (e.component === "connectivity-proxy" && e.status && !PROXY_ONLY.has(e.status)) {
    rows.push(arrowRow(L["Connectivity proxy"], L["Cloud Connector"], `Cloud Connector: ${e.note || "forwarded"}`, bad, "tunnel"));
  }
  for (const r of rows) r.addEventListener("click", () => hop.classList.toggle("open"));
  hop.append(...rows, await detail(e));
  const old = document.getElementById("hop-" + e.seq);
  old ? old.replaceWith(hop) : document.getElementById("hops").append(hop);
  checkFit();
}

// How many labels do not fit their lanes (0 is the goal; the page test
// reads it at a 1400-pixel-wide window).
function checkFit() {
  let clipped = 0;
  for (const l of document.querySelectorAll("#hops .label")) if (l.scrollWidth > l.clientWidth + 1) clipped++;
  document.getElementById("status").dataset.clipped = String(clipped);
}

// Entries still waiting for their answer (status 0): asked for again until
// they complete.
const pending = new Set();
let polling = false;

// Asks only for what is new (`?since=`): a full journal is never fetched
// again, however large it grew.
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const since = pending.size ? Math.min(...pending) - 1 : lastSeq;
    const entries = await (await fetch(`journal?since=${since}`)).json();
    for (const e of entries) {
      lastSeq = Math.max(lastSeq, e.seq);
      if (e.status) pending.delete(e.seq); else pending.add(e.seq);
      const key = `${e.status}/${e.latency_ms}`;
      if (seen.get(e.seq) === key) continue;
      seen.set(e.seq, key);
      await addHop(e);
    }
    // A pending entry the journal no longer holds (evicted) is not waited for.
    const returned = new Set(entries.map((e) => e.seq));
    for (const p of [...pending]) if (!returned.has(p)) pending.delete(p);
    document.getElementById("status").textContent = `live — ${seen.size} requests`;
  } catch (err) {
    document.getElementById("status").textContent = "stack unreachable: " + err.message;
  } finally {
    polling = false;
  }
}

async function config() {
  const info = await (await fetch("info")).json();
  jwks = await (await fetch("jwks")).json();
  document.getElementById("tenants").append(
    el("p", {}, `UAA domain: ${info.uaa_domain}`, el("br"), `gateway (proxy): ${info.gateway}`),
    table((info.tenants || []).map((t) => [t.subdomain, el("code", {}, t.zid)])),
    table((info.clients || []).map((c) => [el("code", {}, c.client_id), el("code", {}, c.client_secret)])),
  );
  document.getElementById("destinations").append(table(Object.entries(info.destinations || {}).map(([n, t]) => [n, t])));
  for (const loc of info.cloud_connector?.locations || []) {
    document.getElementById("connectors").append(
      el("p", {}, `location "${loc.id}" — subject ${loc.subject_pattern}, certificates ${loc.certificate_validity_minutes} min, expiration tolerance ${loc.expiration_tolerance_hours ?? 0} h`),
      el("p", {}, el("span", { class: "cert" }, loc.system_certificate ? `system certificate ${loc.system_certificate.subject} — issued by ${loc.system_certificate.issuer}` : "no system certificate")),
      table(loc.mappings.map((m) => [m.virtual, "→ " + m.internal, m.principal, m.paths.join(" ")])),
    );
  }
}

document.getElementById("lanes").append(...LANES.map((l) => el("div", {}, l)));
document.getElementById("clear").addEventListener("click", async () => {
  await fetch("journal", { method: "DELETE" });
  seen.clear();
  pending.clear();
  document.getElementById("hops").replaceChildren();
});
config().then(poll);
setInterval(poll, 1000);
