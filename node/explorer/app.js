// The Custody explorer: one HTML shell, rendered by this module from location.pathname and the
// node's JSON API. Pages: network (/), search (/search?q=), shipment (/s/ID), member (/m/ID),
// block (/b/HEIGHT). Every fact on a shipment page comes from the decoded canonical bytes of
// the bundle's verified events when it has them; the node's JSON fills in only what events do
// not carry (member names, the derived state, block times).
//
// The DOM is built with createElement and text nodes only (never innerHTML), so text from the
// ledger can never become markup, and no inline script or style is needed (the CSP forbids
// both).

import * as V from './verify.js';

const page = document.getElementById('page');

// ---------------------------------------------------------------------------------------
// DOM helpers

/** An element with attributes (null/false skipped) and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function section(id, title, ...children) {
  return h('section', { id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), ...children);
}

/** A table with a caption-less header row of `th scope=col` and the given rows. */
function table(id, headings, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' }, h('table', { id, ...attrs },
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows)));
}

/** A definition list from [term, value] pairs; pairs with a null value are left out. */
function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function empty(text) {
  return h('p', { class: 'empty' }, text);
}

// ---------------------------------------------------------------------------------------
// Formatting

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

/**
 * A time in the viewer's zone, with the UTC instant in `datetime` and `title`. Block and
 * event times are whole milliseconds, so `Date` holds them exactly.
 */
function time(rfc3339, format = dateTime) {
  if (!rfc3339) return '—';
  const at = new Date(rfc3339);
  if (Number.isNaN(at.getTime())) return rfc3339;
  const utc = at.toISOString();
  return h('time', { datetime: utc, title: `${utc.slice(0, 10)} ${utc.slice(11, 23)} UTC` }, format.format(at));
}

const decimalSeparator = new Intl.NumberFormat().formatToParts(1.5).find((p) => p.type === 'decimal')?.value ?? '.';
const integers = new Intl.NumberFormat();

/** ISO 4217 minor-unit digits of a currency, as the platform's currency data has them. */
function minorDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** An amount in minor units, shown in major units with BigInt arithmetic: no float rounding. */
function money(minor, currency) {
  if (minor === null || minor === undefined) return '—';
  const value = BigInt(minor);
  const digits = minorDigits(currency);
  const scale = 10n ** BigInt(digits);
  const whole = integers.format(value / scale);
  const fraction = digits > 0 ? decimalSeparator + (value % scale).toString().padStart(digits, '0') : '';
  return h('span', { class: 'money', 'data-minor': value.toString() }, `${whole}${fraction} ${currency}`);
}

function count(n) {
  return integers.format(BigInt(n));
}

function grams(n) {
  return `${integers.format(BigInt(n))} g`;
}

/** Thousandths of a unit as a decimal string, exactly. */
function milli(n) {
  const v = BigInt(n);
  const sign = v < 0n ? '−' : '';
  const a = v < 0n ? -v : v;
  const frac = (a % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return `${sign}${a / 1000n}${frac ? `.${frac}` : ''}`;
}

function words(snake) {
  const text = String(snake).replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function short(hex) {
  return hex && hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : hex;
}

/** An event kind's name in words: `HandoffAccepted` → `Handoff accepted`. */
function kindName(name) {
  return words(name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase());
}

function code(text) {
  return h('code', {}, text);
}

// A status is never shown by colour alone: each has a symbol and words.
const STATUS_SYMBOL = {
  registered: '◌', in_transit: '→', at_customs: '⧗', held: '⚠', released: '✓',
  out_for_delivery: '→', delivered: '✓', return_requested: '↩', returned: '↩',
};

function status(value) {
  return h('span', { class: `status status-${value}`, 'data-status': value },
    h('span', { 'aria-hidden': 'true' }, `${STATUS_SYMBOL[value] ?? '•'} `), words(value));
}

const VERDICT_TEXT = { pending: 'Pending', verified: 'Verified', failed: 'Failed' };

/** A verdict badge; style.css adds the symbol before the word. */
function badge(verdict, title) {
  return h('span', { class: 'badge', 'data-verdict': verdict, title }, VERDICT_TEXT[verdict]);
}

// ---------------------------------------------------------------------------------------
// Links: every member id, node key, block height and event id is a link to its page.

function memberLink(id, label) {
  return h('a', { href: `/m/${encodeURIComponent(id)}`, 'data-member': id }, label ?? id);
}

function shipmentLink(id) {
  return h('a', { href: `/s/${encodeURIComponent(id)}`, 'data-shipment': id }, id);
}

function blockLink(height) {
  return h('a', { href: `/b/${height}`, 'data-block': String(height) }, `#${height}`);
}

/** Event ids link to their block's page, where the event has an anchor. */
function eventLink(id, height) {
  if (height === null || height === undefined) return code(short(id));
  return h('a', { href: `/b/${height}#event-${id}`, title: id }, code(short(id)));
}

/** Keys link to the member holding them (node keys and event keys alike). */
function keyLink(key, directory) {
  const member = directory.byKey.get(key) ?? directory.byNodeKey.get(key);
  const text = code(short(key));
  return member ? h('a', { href: `/m/${encodeURIComponent(member.id)}`, 'data-member': member.id, title: key }, text) : h('span', { title: key }, text);
}

// ---------------------------------------------------------------------------------------
// The API

class ApiError extends Error {}

async function api(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || detail;
    } catch {
      // not a problem document
    }
    throw new ApiError(`${path}: ${response.status} ${detail}`);
  }
  return response.json();
}

/** Members, indexed by id, current key, retired keys and node key. */
async function directory() {
  const members = await api('/v1/members');
  const dir = { members, byId: new Map(), byKey: new Map(), byNodeKey: new Map() };
  for (const m of members) {
    dir.byId.set(m.id, m);
    dir.byKey.set(m.key, m);
    for (const k of m.retired_keys) dir.byKey.set(k, m);
    if (m.node_key) dir.byNodeKey.set(m.node_key, m);
  }
  return dir;
}

/** Every page of a `{items, next}` list. */
async function allPages(path) {
  const items = [];
  let after = null;
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const answer = await api(after === null ? path : `${path}${sep}after=${encodeURIComponent(after)}`);
    items.push(...answer.items);
    if (!answer.next) return items;
    after = answer.next;
  }
}

// ---------------------------------------------------------------------------------------
// Page frame

function setPage(kind, title, ...content) {
  page.dataset.page = kind;
  document.title = `${title} · Custody explorer`;
  page.replaceChildren(...content.flat().filter(Boolean));
}

// `data-ready` on #page means: this page has all its data and is not being left. Whoever
// waits for the next page after a click or a search must not take this one for it, so the
// mark goes as soon as a navigation starts, and comes back if the browser restores the page
// from its back-forward cache.
let loaded = false;

function ready() {
  loaded = true;
  page.dataset.ready = 'true';
}

function leaving() {
  delete page.dataset.ready;
}

/** Whether a click on `link` starts a navigation to another page of this site. */
function leavesPage(event, link) {
  if (!link || link.hasAttribute('download') || event.defaultPrevented || event.button !== 0
    || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  const to = new URL(link.href, location.href);
  return to.origin === location.origin
    && (to.pathname !== location.pathname || to.search !== location.search);
}

function notFound(what) {
  setPage('not-found', `${what} not found`,
    h('h1', {}, `${what} not found`),
    h('p', {}, 'Nothing on this ledger has that name.'),
    h('p', {}, h('a', { href: '/', id: 'home-link' }, 'Back to the network')));
  ready();
}

function failure(kind, error) {
  setPage(kind, 'Error',
    h('h1', {}, 'Could not load this page'),
    h('p', { role: 'alert' }, error.message),
    h('p', {}, h('a', { href: '/' }, 'Back to the network')));
  ready();
}

// ---------------------------------------------------------------------------------------
// Network page

async function networkPage() {
  const [net, dir] = await Promise.all([api('/v1/network'), directory()]);
  setPage('network', 'Network',
    h('h1', {}, 'Network'),
    facts([
      ['Chain id', h('code', { id: 'chain-id' }, net.chain_id)],
      ['Genesis hash', h('code', { id: 'genesis-hash', class: 'hash' }, net.genesis_hash)],
      ['Height', h('span', { id: 'height' }, net.height > 0 ? blockLink(net.height) : '0')],
      ['Head time', time(net.head_time)],
    ]),
    section('validators-section', 'Validators', table('validators',
      ['Member', 'Node key', 'Voting power', 'Last proposed', 'Last signed'],
      net.validators.map((v) => h('tr', {},
        h('th', { scope: 'row' }, memberLink(v.member_id, v.name || v.member_id)),
        h('td', {}, keyLink(v.node_key, dir)),
        h('td', {}, count(v.voting_power)),
        h('td', {}, v.last_proposed_height == null ? '—' : blockLink(v.last_proposed_height)),
        h('td', {}, v.last_signed_height == null ? '—' : blockLink(v.last_signed_height)))))),
    section('blocks-section', 'Recent blocks', net.recent_blocks.length === 0 ? empty('No block yet.') : table('recent-blocks',
      ['Height', 'Time', 'Events', 'Proposer', 'Hash'],
      net.recent_blocks.map((b) => h('tr', { 'data-height': String(b.height) },
        h('th', { scope: 'row' }, blockLink(b.height)),
        h('td', {}, time(b.time)),
        h('td', {}, count(b.event_count)),
        h('td', {}, b.proposer_member ? memberLink(b.proposer_member) : keyLink(b.proposer, dir)),
        h('td', {}, code(short(b.hash))))))),
    section('activity-section', 'Events per minute', eventsPerMinute(net.events_per_minute)),
    section('health-section', 'Node health', health(net.health)));
  ready();
}

function eventsPerMinute(minutes) {
  const most = minutes.reduce((m, x) => Math.max(m, x.events), 0);
  return h('ol', { id: 'events-per-minute', class: 'bars' }, minutes.map((m) => h('li', {},
    time(m.minute, clock), ' ',
    h('meter', { min: 0, max: Math.max(most, 1), value: m.events, 'aria-label': `${m.events} events` }),
    ' ', h('span', { class: 'bar-count' }, count(m.events)))));
}

function health(report) {
  const ok = report && report.healthy;
  return h('div', { id: 'health', 'data-healthy': String(Boolean(ok)) },
    h('p', {}, h('span', { 'aria-hidden': 'true' }, ok ? '✓ ' : '⚠ '), ok ? 'Healthy' : 'Unhealthy'),
    facts([
      ['Problems', report.problems && report.problems.length ? h('ul', {}, report.problems.map((p) => h('li', {}, p))) : 'none'],
      ['Failed task', report.failed_task ?? null],
      ['Peers at height', report.peers_height == null ? null : String(report.peers_height)],
      ['Since last commit', `${integers.format(report.since_last_commit_ms)} ms`],
    ]));
}

// ---------------------------------------------------------------------------------------
// Search page

function shipmentRows(shipments, id = 'shipment-results') {
  return table(id, ['Shipment', 'Status', 'Seller', 'Custodian', 'Route', 'Registered'],
    shipments.map((s) => h('tr', {},
      h('th', { scope: 'row' }, shipmentLink(s.shipment_id)),
      h('td', {}, status(s.status)),
      h('td', {}, memberLink(s.seller)),
      h('td', {}, memberLink(s.custodian)),
      h('td', {}, `${s.origin} → ${s.destination}`),
      h('td', {}, time(s.registered_at)))));
}

/** The list filters of `GET /v1/shipments` that the search page passes through. */
const FILTERS = ['status', 'seller', 'custodian', 'destination', 'from', 'to'];

async function searchPage() {
  const params = new URLSearchParams(location.search);
  const q = (params.get('q') || '').trim();
  document.getElementById('search-q').value = q;
  const query = new URLSearchParams();
  if (q) query.set('q', q);
  for (const name of [...FILTERS, 'cursor']) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  const [found, dir] = await Promise.all([api(`/v1/shipments?${query}`), directory()]);
  const needle = q.toLowerCase();
  const members = q ? dir.members.filter((m) => m.id.toLowerCase().includes(needle)
    || m.name.toLowerCase().includes(needle) || m.key === needle || m.node_key === needle) : [];
  const height = /^\d{1,19}$/.test(q) ? q : null;
  const filters = FILTERS.filter((name) => params.get(name)).map((name) => `${name} ${params.get(name)}`);
  let next = null;
  if (found.next_cursor) {
    const more = new URLSearchParams(query);
    more.set('cursor', found.next_cursor);
    next = h('p', {}, h('a', { href: `/search?${more}`, rel: 'next' }, 'Next page'));
  }
  const heading = q ? `Results for “${q}”` : 'Shipments';
  setPage('search', q ? `Search: ${q}` : 'Shipments',
    h('h1', {}, heading),
    filters.length ? h('p', {}, `Filtered by ${filters.join(', ')}.`) : null,
    section('shipments-found', 'Shipments', found.shipments.length ? shipmentRows(found.shipments) : empty('No shipment matches.'), next),
    q ? section('members-found', 'Members', members.length ? h('ul', {}, members.map((m) => h('li', {}, memberLink(m.id, `${m.name} (${m.id})`)))) : empty('No member matches.')) : null,
    height ? section('blocks-found', 'Blocks', h('p', {}, 'Block ', blockLink(height))) : null);
  ready();
}

// ---------------------------------------------------------------------------------------
// Shipment page

/** Entries for the timeline: the bundle's events, plus any the list has that it lacks. */
function timelineEntries(listed, bundle, result) {
  const byId = new Map();
  listed.forEach((e) => byId.set(e.event_id, { eventId: e.event_id, height: e.height, logIndex: BigInt(e.log_index), recordedAt: e.recorded_at, node: e.event, verdict: 'failed', check: 'bundle.complete', message: 'listed by the node but absent from its bundle', decoded: null }));
  (bundle.events || []).forEach((item, i) => {
    const id = String(item.event_id).toLowerCase();
    const entry = byId.get(id) ?? { eventId: id, height: item.height, logIndex: BigInt(item.log_index), recordedAt: null, node: item.event };
    const verdict = result ? result.events[i] : null;
    Object.assign(entry, verdict
      ? { verdict: verdict.verdict, check: verdict.check, message: verdict.message, decoded: verdict.decoded }
      : { verdict: 'pending', check: null, message: null, decoded: null });
    // A verified event's block height and time are the ones its log entry proves, not the
    // node's word.
    if (verdict?.verdict === 'verified') Object.assign(entry, { height: verdict.height, recordedAt: verdict.time });
    byId.set(id, entry);
  });
  return [...byId.values()].sort((a, b) => (a.logIndex < b.logIndex ? -1 : a.logIndex > b.logIndex ? 1 : 0));
}

/** The signed event to show: the verified decoded bytes, else the node's copy. */
function shown(entry) {
  return entry.verdict === 'verified' ? entry.decoded : entry.node;
}

function kindOf(signed) {
  const [name] = Object.keys(signed.event.kind);
  return [name, signed.event.kind[name]];
}

function signerLink(key, dir) {
  const member = dir.byKey.get(key);
  return member ? memberLink(member.id) : h('span', { title: key }, code(short(key)));
}

/** One line about an event; `heights` maps event ids on this page to their blocks. */
function summary(name, body, heights) {
  switch (name) {
    case 'ShipmentRegistered':
      return [`Registered ${body.origin} → ${body.destination}, ${body.parcels.length} parcel(s), invoice ${body.invoice.number}`];
    case 'HandoffProposed':
      return ['Handoff offered to ', memberLink(body.to), ` at ${body.place}`];
    case 'HandoffAccepted':
      return ['Handoff accepted (offer ', eventLink(body.proposal, heights.get(body.proposal)), ')'];
    case 'CustomsDeclared':
      return [`Declared to customs in ${body.jurisdiction}, value `, money(body.customs_value_minor, body.currency)];
    case 'DutyPaid':
      return ['Duty and tax paid: ', money(body.amount.amount_minor, body.amount.currency)];
    case 'CustomsCleared':
      return [`Customs decision: ${words(body.outcome)}`];
    case 'Delivered':
      return [`Delivered at ${body.place}; receiver private (committed)`];
    case 'PersonalDataErased':
      return ['Personal data erased: the ledger keeps only its commitments'];
    case 'ReturnRequested':
      return [`Return ${body.rma} requested`];
    case 'ReturnReceived':
      return [`Return ${body.rma} received`];
    case 'DocumentAttested':
      return [`Document attested: ${body.document_type}`];
    case 'TrackingScanRecorded':
      return [`Scan: ${words(body.biz_step)} at ${body.read_point}${body.exception ? ' (exception)' : ''}`];
    default:
      return [kindName(name)];
  }
}

function timeline(entries, dir) {
  const heights = new Map(entries.map((e) => [e.eventId, e.height]));
  return h('ol', { id: 'timeline', class: 'timeline' }, entries.map((entry) => {
    const signed = shown(entry);
    const [name, body] = kindOf(signed);
    return h('li', { 'data-event-id': entry.eventId, id: `event-${entry.eventId}` },
      h('div', { class: 'timeline-head' },
        badge(entry.verdict, entry.check ? `${entry.check}: ${entry.message}` : (entry.verdict === 'verified' ? 'shown from the verified bytes' : 'not yet verified')),
        ' ', h('strong', {}, kindName(name))),
      h('p', {}, summary(name, body, heights)),
      h('p', { class: 'meta', 'data-height': String(entry.height), 'data-time': entry.recordedAt },
        'Signed by ', signerLink(signed.signer, dir), ', occurred ', time(signed.event.occurred_at),
        entry.recordedAt ? [', recorded ', time(entry.recordedAt)] : null,
        ' in block ', blockLink(entry.height), ', event ', eventLink(entry.eventId, entry.height)));
  }));
}

// Personal data is on the ledger only as salted commitments (issue 15): the page never shows
// a value, only whether the parties' nodes still hold it off the ledger or it was erased.
function personalText(erased) {
  return erased ? 'erased' : 'private (committed)';
}

function isErased(entries) {
  return bodies(entries, 'PersonalDataErased').length > 0;
}

function bodies(entries, kind) {
  return entries.map((e) => ({ entry: e, signed: shown(e) }))
    .filter(({ signed }) => kindOf(signed)[0] === kind)
    .map(({ entry, signed }) => ({ entry, signed, body: signed.event.kind[kind] }));
}

function custodyChain(entries, dir) {
  const offers = bodies(entries, 'HandoffProposed');
  const accepts = new Map(bodies(entries, 'HandoffAccepted').map((a) => [a.body.proposal, a]));
  const rows = offers.map((o) => {
    const accepted = accepts.get(o.entry.eventId);
    const doc = o.body.transport_document;
    return h('tr', {},
      h('td', {}, signerLink(o.signed.signer, dir)),
      h('td', {}, accepted ? signerLink(accepted.signed.signer, dir) : ['pending for ', memberLink(o.body.to)]),
      h('th', { scope: 'row' }, o.body.place),
      h('td', {}, doc ? `${words(doc.kind)} ${doc.number}` : '—'),
      h('td', {}, accepted ? eventLink(accepted.entry.eventId, accepted.entry.height) : '—'));
  });
  return section('custody-chain', 'Custody chain', rows.length
    ? table('custody-table', ['Offered by', 'Accepted by', 'Where', 'Transport document', 'Acceptance'], rows)
    : empty('No handoff yet.'));
}

function registration(entries) {
  const [reg] = bodies(entries, 'ShipmentRegistered');
  return reg ? reg.body : null;
}

function parcels(reg) {
  if (!reg) return section('parcels', 'Parcels', empty('The registration is not available.'));
  const packed = (sscc) => reg.packing_list.lines.filter((l) => l.sscc === sscc)
    .map((l) => `line ${l.invoice_line} × ${count(l.quantity)}`).join(', ');
  return section('parcels', 'Parcels', table('parcel-table', ['SSCC', 'Gross weight', 'Contents'],
    reg.parcels.map((p) => h('tr', {}, h('th', { scope: 'row' }, code(p.sscc)), h('td', {}, grams(p.gross_weight_grams)), h('td', {}, packed(p.sscc) || '—')))));
}

function invoiceLines(reg, erased) {
  if (!reg) return section('invoice-lines', 'Invoice', empty('The registration is not available.'));
  const inv = reg.invoice;
  return section('invoice-lines', 'Invoice',
    facts([
      ['Number', inv.number], ['Issued', time(inv.issued_at)],
      ['Seller', `${inv.seller.name} (${inv.seller.country})`], ['Buyer', `${personalText(erased)} (${inv.buyer.country})`],
      ['Incoterm', `${reg.incoterm} ${reg.incoterm_place}`],
      ['Total', money(inv.total_minor, inv.currency)], ['Freight', money(inv.freight_minor, inv.currency)],
      ['Insurance', money(inv.insurance_minor, inv.currency)],
    ]),
    table('invoice-table', ['Line', 'Description', 'HS code', 'Quantity', 'Unit value', 'Net weight', 'Origin'],
      inv.lines.map((l) => h('tr', {},
        h('th', { scope: 'row' }, String(l.line_no)), h('td', {}, l.description), h('td', {}, code(l.hs_code)),
        h('td', {}, `${count(l.quantity)} ${l.unit}`), h('td', {}, money(l.unit_value_minor, inv.currency)),
        h('td', {}, grams(l.net_weight_grams)), h('td', {}, l.origin_country)))));
}

function regime(value) {
  return typeof value === 'string' ? words(value) : `Tax collected at sale (${value.tax_collected_at_sale.registration_id})`;
}

function customs(entries, dir) {
  const declared = bodies(entries, 'CustomsDeclared');
  const paid = bodies(entries, 'DutyPaid');
  const cleared = bodies(entries, 'CustomsCleared');
  if (declared.length === 0) return section('customs', 'Customs', empty('Not declared to customs.'));
  return section('customs', 'Customs', declared.map(({ entry, body, signed }) => {
    const payments = paid.filter((p) => p.body.declaration === entry.eventId);
    const decisions = cleared.filter((c) => c.body.declaration === entry.eventId);
    return h('article', { class: 'declaration', 'data-declaration': entry.eventId },
      h('h3', {}, `Declaration ${body.declaration_ref} in ${body.jurisdiction}`),
      facts([
        ['Declared by', signerLink(signed.signer, dir)],
        ['Regime', regime(body.regime)],
        ['Transport', words(body.transport_mode)],
        ['Valuation', body.valuation_basis],
        ['Customs value', money(body.customs_value_minor, body.currency)],
        ['Duty', money(body.duty_total_minor, body.currency)],
        ['Tax', money(body.tax_total_minor, body.currency)],
        ['Exchange rate', body.exchange_rate ? `${body.exchange_rate.from} → ${body.exchange_rate.to}: ${body.exchange_rate.numerator}/${body.exchange_rate.denominator}` : null],
        ['Payments', payments.length ? h('ul', {}, payments.map((p) => h('li', {}, money(p.body.amount.amount_minor, p.body.amount.currency), ` ref. ${p.body.payment_reference} by `, signerLink(p.signed.signer, dir)))) : 'none'],
        ['Outcome', decisions.length ? h('ul', {}, decisions.map((c) => h('li', {}, `${words(c.body.outcome)} (${c.body.authority_reference})${c.body.reason ? `: ${c.body.reason}` : ''}`))) : 'pending'],
      ]),
      table(null, ['Invoice line', 'HS code', 'Customs value', 'Duty', 'Tax'], body.lines.map((l) => h('tr', {},
        h('th', { scope: 'row' }, String(l.invoice_line)), h('td', {}, code(l.hs_code)),
        h('td', {}, money(l.customs_value_minor, body.currency)), h('td', {}, money(l.duty_minor, body.currency)),
        h('td', {}, money(l.tax_minor, body.currency))))));
  }));
}

function documents(entries, dir) {
  const rows = bodies(entries, 'DocumentAttested').map(({ body, signed }) => h('tr', {},
    h('th', { scope: 'row' }, body.document_type), h('td', {}, code(body.document_hash)),
    h('td', {}, body.reference), h('td', {}, signerLink(signed.signer, dir))));
  bodies(entries, 'Delivered').forEach(({ body, signed }) => rows.push(h('tr', {},
    h('th', { scope: 'row' }, `Proof of delivery (${words(body.proof_kind)})`), h('td', {}, code(body.proof_hash)),
    h('td', {}, `${body.place}, received by: ${personalText(isErased(entries))}`), h('td', {}, signerLink(signed.signer, dir)))));
  return section('documents', 'Documents', rows.length
    ? table('document-table', ['Type', 'SHA-256', 'Reference', 'Attested by'], rows)
    : empty('No document attested.'));
}

function returns(entries) {
  const received = bodies(entries, 'ReturnReceived');
  const items = bodies(entries, 'ReturnRequested').map(({ body }) => {
    const back = received.filter((r) => r.body.rma === body.rma);
    return h('li', {}, `RMA ${body.rma}: `,
      body.lines.map((l) => `line ${l.invoice_line} × ${count(l.quantity)}`).join(', '),
      body.reason ? ` (${body.reason})` : '',
      back.length ? [' — received: ', back.flatMap((r) => r.body.lines.map((l) => `line ${l.invoice_line} × ${count(l.quantity)} ${words(l.disposition)}`)).join(', ')] : ' — not received yet');
  });
  return section('returns', 'Returns', items.length ? h('ul', {}, items) : empty('No return.'));
}

function scans(entries, dir) {
  const rows = bodies(entries, 'TrackingScanRecorded').map(({ entry, body, signed }) => h('tr', {},
    h('td', {}, time(signed.event.occurred_at)),
    h('th', { scope: 'row' }, words(body.biz_step)),
    h('td', {}, words(body.disposition)),
    h('td', {}, body.read_point, body.read_point_gln ? ` (GLN ${body.read_point_gln})` : ''),
    h('td', {}, body.parcels.length ? body.parcels.join(', ') : 'all parcels'),
    h('td', {}, body.sensor_readings.map((s) => `${s.kind} ${milli(s.value_milli)} ${s.unit}${s.min_milli !== null || s.max_milli !== null ? ` (${s.min_milli === null ? '' : milli(s.min_milli)}–${s.max_milli === null ? '' : milli(s.max_milli)})` : ''}`).join('; ') || '—'),
    h('td', {}, body.exception ? [h('span', { 'aria-hidden': 'true' }, '⚠ '), 'exception'] : 'no'),
    h('td', {}, signerLink(signed.signer, dir), ' ', eventLink(entry.eventId, entry.height))));
  return section('scans', 'Tracking scans', rows.length
    ? table('scan-table', ['When', 'Step', 'Disposition', 'Where', 'Parcels', 'Sensors', 'Exception', 'By'], rows)
    : empty('No tracking scan.'));
}

/** The verdict sentence; the signers' member ids are links. */
function verdictText(result) {
  if (result === null) return ['Verifying the bundle…'];
  if (result.ok) {
    const signers = result.checkpoint.signers.flatMap((s, i) => (i === 0 ? [memberLink(s.member)] : [', ', memberLink(s.member)]));
    return [`Verified at checkpoint height ${result.checkpoint.height}, signed by `, signers];
  }
  const f = result.failure;
  const where = f.eventId ? ` (event ${short(f.eventId)})` : '';
  return [`Verification failed: ${f.check}${where}`];
}

async function shipmentPage(id) {
  const found = await api(`/v1/shipments?q=${encodeURIComponent(id)}`);
  if (!found.shipments.some((s) => s.shipment_id === id)) {
    notFound('Shipment');
    return;
  }
  const base = `/v1/shipments/${encodeURIComponent(id)}`;
  const [state, listed, dir, nodeGenesis] = await Promise.all([api(base), allPages(`${base}/events`), directory(), api('/v1/genesis')]);
  // Fetched after the list, so the bundle holds at least every listed event.
  const bundleResponse = await fetch(`${base}/bundle`, { headers: { accept: 'application/json' } });
  if (!bundleResponse.ok) throw new ApiError(`${base}/bundle: ${bundleResponse.status}`);
  const bundleText = await bundleResponse.text();
  const bundle = JSON.parse(bundleText);
  const download = URL.createObjectURL(new Blob([bundleText], { type: 'application/json' }));

  const render = (result, genesisLabel) => {
    const entries = timelineEntries(listed, bundle, result);
    const verdict = result === null ? 'pending' : result.ok ? 'verified' : 'failed';
    const reg = registration(entries);
    const erased = isErased(entries) || state.personal_erased === true;
    setPage('shipment', `Shipment ${id}`,
      h('h1', {}, 'Shipment ', code(id)),
      facts([
        ['Status', status(state.status)],
        ['Seller', memberLink(state.seller)],
        ['Custodian', memberLink(state.custodian)],
        ['Route', `${state.origin} → ${state.destination}`],
        ['Incoterm', state.incoterm],
        ['Last place', state.last_place ?? null],
        ['Registered', time(state.registered_at)],
        ['Updated', time(state.updated_at)],
        ['Personal data', h('span', { id: 'personal-data', 'data-erased': String(erased) }, personalText(erased))],
      ]),
      section('verification', 'Verification',
        h('p', { id: 'verdict', 'data-verdict': verdict, 'data-check': result && !result.ok ? result.failure.check : null, role: 'status' },
          verdictText(result)),
        result && !result.ok ? h('p', { class: 'detail' }, result.failure.message) : null,
        facts([
          ['Trusted genesis', [h('code', { id: 'trusted-genesis', class: 'hash' }, trustedHash(result, genesisLabel)), ` (${genesisLabel})`]],
          ['Checkpoint', result?.checkpoint ? [blockLink(result.checkpoint.height), ' ', code(short(result.checkpoint.hash))] : null],
          ['Bundle', h('a', { id: 'bundle-download', href: download, download: `${id}.bundle.json` }, 'Download the bundle (JSON)')],
        ]),
        // Always visible: trusting a genesis file obtained elsewhere is the point of the check.
        h('div', { class: 'genesis-paste' },
          h('label', { for: 'genesis-input' }, 'Verify against a genesis file you trust: paste it (JSON) here'),
          h('textarea', { id: 'genesis-input', rows: 4, spellcheck: 'false', autocomplete: 'off' }),
          h('button', { id: 'genesis-apply', type: 'button' }, 'Verify with this genesis'))),
      section('history', 'Timeline', timeline(entries, dir)),
      custodyChain(entries, dir),
      parcels(reg),
      invoiceLines(reg, erased),
      customs(entries, dir),
      documents(entries, dir),
      returns(entries),
      scans(entries, dir));
    document.getElementById('genesis-apply').addEventListener('click', () => {
      const text = document.getElementById('genesis-input').value;
      pastedText = text;
      let pasted;
      try {
        pasted = JSON.parse(text);
      } catch {
        pasted = text; // verifyBundle reports it under bundle.genesis
      }
      delete page.dataset.ready;
      run(pasted, 'pasted');
    });
  };

  // The hash shown as trusted: the one just verified against, or while a check runs the
  // previous one; a pasted file that is not a valid genesis has none.
  let lastHash = null;
  const trustedHash = (result, label) => {
    if (result === null) return lastHash ?? '—';
    return result.genesisHash ?? (label === 'pasted' ? 'not a valid genesis file' : '—');
  };
  // A second paste while a check runs supersedes it: only the latest run may render.
  let runs = 0;
  const run = async (genesis, label) => {
    const mine = ++runs;
    render(null, label);
    const result = await V.verifyBundle(bundle, genesis);
    if (mine !== runs) return;
    lastHash = result.genesisHash;
    render(result, label);
    if (pastedText !== null) document.getElementById('genesis-input').value = pastedText;
    ready();
  };
  let pastedText = null;
  await run(nodeGenesis, 'from this node');
}

// ---------------------------------------------------------------------------------------
// Member page

async function memberPage(id) {
  const dir = await directory();
  const member = dir.byId.get(id);
  if (!member) {
    notFound('Member');
    return;
  }
  const q = encodeURIComponent(id);
  const [selling, holding, signed] = await Promise.all([
    api(`/v1/shipments?seller=${q}&limit=100`),
    api(`/v1/shipments?custodian=${q}&limit=100`),
    api(`/v1/members/${member.key}/events?limit=100`),
  ]);
  setPage('member', member.name,
    h('h1', {}, member.name, ' ', h('small', {}, code(member.id))),
    facts([
      ['Status', h('span', { 'data-status': member.status }, h('span', { 'aria-hidden': 'true' }, member.status === 'active' ? '✓ ' : '✗ '), words(member.status))],
      ['Roles', member.roles.map(words).join(', ')],
      ['Event key', code(member.key)],
      ['Retired keys', member.retired_keys.length ? h('ul', {}, member.retired_keys.map((k) => h('li', {}, code(k)))) : null],
      ['Node key', member.node_key ? code(member.node_key) : null],
      ['Voting power', member.voting_power > 0 ? count(member.voting_power) : null],
    ]),
    section('seller-of', 'Shipments sold', selling.shipments.length ? shipmentRows(selling.shipments, 'sold-shipments') : empty('None.'),
      selling.next_cursor ? h('p', {}, h('a', { href: `/search?seller=${q}` }, 'All of them')) : null),
    section('custodian-of', 'Shipments held now', holding.shipments.length ? shipmentRows(holding.shipments, 'held-shipments') : empty('None.'),
      holding.next_cursor ? h('p', {}, h('a', { href: `/search?custodian=${q}` }, 'All of them')) : null),
    section('signed-events', 'Events signed with the current key', signed.next ? h('p', {}, `The first ${signed.items.length}, oldest first.`) : null, signed.items.length ? table('member-events',
      ['Event', 'Kind', 'Shipment', 'Block', 'Recorded'],
      signed.items.map((e) => {
        const [name] = kindOf(e.event);
        const sid = V.shipmentOf(e.event.event.kind);
        return h('tr', {},
          h('th', { scope: 'row' }, eventLink(e.event_id, e.height)), h('td', {}, kindName(name)),
          h('td', {}, sid ? shipmentLink(sid) : '—'), h('td', {}, blockLink(e.height)), h('td', {}, time(e.recorded_at)));
      })) : empty('None.')));
  ready();
}

// ---------------------------------------------------------------------------------------
// Block page

async function blockPage(text) {
  const [net, dir, genesis] = await Promise.all([api('/v1/network'), directory(), api('/v1/genesis')]);
  // Asking for a block above the head would answer 404, which browsers log as an error;
  // the head height tells us beforehand.
  if (!/^\d{1,19}$/.test(text) || BigInt(text) < 1n || BigInt(text) > BigInt(net.height)) {
    notFound('Block');
    return;
  }
  const height = BigInt(text);
  const block = await api(`/v1/blocks/${height}`);
  const hd = block.header;
  const check = await V.verifyHeader(block.header, block.certificate, genesis);
  const events = block.events.map((b64, i) => {
    try {
      return { id: block.event_ids[i], signed: V.decode(V.SCHEMA.SignedEvent, V.fromBase64(b64, 'event'), V.EVENT_SIZE_BYTES_MAX, 'event') };
    } catch (e) {
      return { id: block.event_ids[i], error: e.message };
    }
  });
  setPage('block', `Block ${height}`,
    h('h1', {}, `Block ${height}`),
    h('p', { id: 'block-verdict', 'data-verdict': check.ok ? 'verified' : 'failed' },
      check.ok
        ? ['Certified by ', check.signers.flatMap((s, i) => (i === 0 ? [memberLink(s.member)] : [', ', memberLink(s.member)])), ` under the genesis of this node, ${short(check.genesisHash)}`]
        : `Not verified: ${check.message}`),
    h('nav', { 'aria-label': 'Neighbouring blocks', class: 'pager' },
      height > 1n ? h('a', { href: `/b/${height - 1n}`, rel: 'prev' }, '← Previous') : null, ' ',
      height < BigInt(net.height) ? h('a', { href: `/b/${height + 1n}`, rel: 'next' }, 'Next →') : null),
    facts([
      ['Hash', code(block.hash)],
      ['Time', time(hd.time)],
      ['Proposer', keyLink(hd.proposer, dir)],
      ['Previous', height > 1n ? [blockLink(height - 1n), ' ', code(short(hd.prev_hash))] : ['genesis ', code(short(hd.prev_hash))]],
      ['Events', count(hd.event_count)],
      ['Events root', code(hd.events_root)],
      ['Log size', count(hd.log_size)],
      ['Log root', code(hd.log_root)],
      ['State root', code(hd.state_root)],
    ]),
    section('certificate', 'Commit certificate', facts([
      ['Round', String(block.certificate.round)],
      ['Signers', h('ul', {}, block.certificate.signatures.map((s) => h('li', {}, keyLink(s.validator, dir))))],
    ])),
    section('block-events', 'Events', events.length ? h('ol', { id: 'block-event-list' }, events.map((e) => h('li', { id: `event-${e.id}`, 'data-event-id': e.id },
      eventLink(e.id, height), ' ',
      e.error ? `undecodable: ${e.error}` : [
        kindName(kindOf(e.signed)[0]), ' ',
        V.shipmentOf(e.signed.event.kind) ? shipmentLink(V.shipmentOf(e.signed.event.kind)) : null,
        ' signed by ', signerLink(e.signed.signer, dir)]))) : empty('No event in this block.')));
  ready();
  if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
}

// ---------------------------------------------------------------------------------------
// Routing

async function route() {
  const path = location.pathname;
  const segment = (prefix) => decodeURIComponent(path.slice(prefix.length));
  let kind = 'network';
  try {
    if (path === '/' || path === '') {
      await networkPage();
    } else if (path === '/search') {
      kind = 'search';
      await searchPage();
    } else if (path.startsWith('/s/') && path.length > 3) {
      kind = 'shipment';
      await shipmentPage(segment('/s/'));
    } else if (path.startsWith('/m/') && path.length > 3) {
      kind = 'member';
      await memberPage(segment('/m/'));
    } else if (path.startsWith('/b/') && path.length > 3) {
      kind = 'block';
      await blockPage(segment('/b/'));
    } else {
      notFound('Page');
    }
  } catch (error) {
    failure(kind, error);
  }
}

document.getElementById('search').addEventListener('submit', (event) => {
  const q = document.getElementById('search-q').value.trim();
  if (!q) {
    event.preventDefault();
    location.assign('/search');
  }
  leaving();
});

document.addEventListener('click', (event) => {
  const link = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (leavesPage(event, link)) leaving();
});

window.addEventListener('pageshow', (event) => {
  if (event.persisted && loaded) page.dataset.ready = 'true';
});

route();
