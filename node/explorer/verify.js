// Offline verification of a provenance bundle (docs/PROTOCOL.md §14), written from the
// protocol text alone so that the explorer does not have to take the node's word for anything
// it shows as verified. Plain ES module: it runs in a browser and in any JavaScript runtime
// with WebCrypto (`globalThis.crypto.subtle` with SHA-256 and Ed25519).
//
// How a `custody-bundle/v2` proves a shipment's whole history: the checkpoint header is
// certified by the genesis validators; its `shipments_root` maps the shipment to the entry
// hash of its latest log entry (a sparse Merkle proof); each log entry names the entry hash of
// the shipment's previous event (`shipment_prev`), back to its registration. Walking that
// chain from the head down to a ShipmentRegistered event anchors every event, with its block
// height and time, and leaves no room to drop one.
//
// What WebCrypto covers and what this file adds:
// - SHA-256 (hashes, event ids, log entries, the shipment map) is WebCrypto's.
// - Ed25519 verification is WebCrypto's (RFC 8032: it checks the equation [s]B = R + [k]A
//   against the bytes of R, which is the cofactorless check of §5.1 step 5). WebCrypto does
//   not refuse small-order ("weak") keys or a small-order R, and implementations differ on
//   whether they refuse s >= L, so this file checks §5.1 steps 1–3 itself: it decodes A and R
//   as curve points (BigInt arithmetic, reducing a y that is not below p as the reference
//   decoder does), refuses small order, and refuses s >= L.
// - Not reproduced: the cofactored rule of event signatures (§5.1 step 5′, §5.3). Event
//   signatures are checked here with the strict (cofactorless) equation, which WebCrypto
//   offers: it agrees with the network on every honestly made signature, and differs only on
//   one whose key holder crafted it with a small-order (torsion) component in R, which the
//   network accepts. Such an event is reported as an event.signature failure naming the
//   event, which §5.3 calls a signature anomaly.
// - Integers above 2^53 − 1 in the readable JSON copies cannot be represented by
//   JSON.parse numbers; such a value makes the event.json (or checkpoint.header) comparison
//   fail rather than pass wrongly.

const enc = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Size limits of §2.4, in bytes. */
export const EVENT_SIZE_BYTES_MAX = 1048576;
export const RECORD_SIZE_BYTES_MAX = 262144;
/** Most events a bundle may hold (§14). */
export const BUNDLE_EVENTS_MAX = 10000;
/** Most disclosures a bundle may carry (§14): a few personal fields per shipment. */
export const BUNDLE_DISCLOSURES_MAX = 64;
export const BUNDLE_FORMAT = 'custody-bundle/v2';
/** The deepest a shipment-map proof can be: one level per key bit. */
export const SHIPMENT_PROOF_DEPTH_MAX = 256;

/** A decoding or conversion failure; `message` says where. */
export class FormatError extends Error {}

// ---------------------------------------------------------------------------------------
// Bytes, hex, base64

export function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(text, length, what) {
  if (typeof text !== 'string' || !/^[0-9a-fA-F]*$/.test(text) || text.length !== length * 2) {
    throw new FormatError(`${what}: expected ${length * 2} hex digits`);
  }
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Standard base64 with padding (RFC 4648 §4), refusing any other spelling. */
export function fromBase64(text, what) {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new FormatError(`${what}: not standard padded base64`);
  }
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  // Non-zero padding bits decode silently; re-encoding catches them, so one value has one
  // spelling.
  if (toBase64(out) !== text) throw new FormatError(`${what}: non-canonical base64`);
  return out;
}

export function toBase64(bytes) {
  let raw = '';
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw);
}

function concat(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------
// Hashes (§3, §6)

export async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes));
}

export const DOMAIN = {
  event: 'custody/event/v1',
  eventSignature: 'custody/event-signature/v1',
  block: 'custody/block/v1',
  genesis: 'custody/genesis/v1',
  vote: 'custody/vote/v1',
  personal: 'custody/personal/v1',
  shipmentKey: 'custody/shipment-key/v1',
};

export function domainHash(domain, bytes) {
  return sha256(concat(enc.encode(domain), bytes));
}

// ---------------------------------------------------------------------------------------
// The canonical encoding (§2.2–2.4)

const U64_MAX = (1n << 64n) - 1n;

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }
  take(n, what) {
    if (n > this.bytes.length - this.at) throw new FormatError(`${what}: truncated`);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  byte(what) {
    return this.take(1, what)[0];
  }
  le(n, what) {
    const b = this.take(n, what);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }
  /** A varint no wider than `bits`, in its shortest form only (§2.3, §2.4 rule 4). */
  varint(bits, what) {
    const tag = this.byte(what);
    if (tag <= 250) return BigInt(tag);
    const widths = { 0xfb: [2, 251n], 0xfc: [4, 1n << 16n], 0xfd: [8, 1n << 32n] };
    const width = widths[tag];
    if (!width || width[0] * 8 > bits) throw new FormatError(`${what}: bad varint tag ${tag}`);
    const value = this.le(width[0], what);
    if (value < width[1]) throw new FormatError(`${what}: non-canonical varint`);
    return value;
  }
}

class Writer {
  constructor() {
    this.parts = [];
  }
  raw(bytes) {
    this.parts.push(bytes);
  }
  varint(value) {
    const v = BigInt(value);
    const le = (n) => {
      const out = new Uint8Array(n);
      let x = v;
      for (let i = 0; i < n; i++) {
        out[i] = Number(x & 0xffn);
        x >>= 8n;
      }
      return out;
    };
    if (v <= 250n) this.raw(Uint8Array.of(Number(v)));
    else if (v < 1n << 16n) this.raw(concat(Uint8Array.of(0xfb), le(2)));
    else if (v < 1n << 32n) this.raw(concat(Uint8Array.of(0xfc), le(4)));
    else this.raw(concat(Uint8Array.of(0xfd), le(8)));
  }
  bytes() {
    return concat(...this.parts);
  }
}

// Each type is { decode(reader, path) -> JSON form, encode(writer, json, path) }. The JSON
// form is the one of §2.5, so decoding canonical bytes gives what the node's API shows, and
// encoding a readable JSON copy gives the canonical bytes it stands for.

function uint(bits) {
  const max = (1n << BigInt(bits)) - 1n;
  return {
    decode: (r, path) => jsonInt(r.varint(bits, path)),
    encode: (w, v, path) => w.varint(checkInt(v, 0n, max, path)),
  };
}

/** A JSON number when exact, else a BigInt (only reachable above 2^53 − 1). */
function jsonInt(v) {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(v)
    : v;
}

function checkInt(v, min, max, path) {
  let b;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else throw new FormatError(`${path}: expected an exact integer`);
  if (b < min || b > max) throw new FormatError(`${path}: out of range`);
  return b;
}

export const T = {};
T.u8 = {
  decode: (r, path) => r.byte(path),
  encode: (w, v, path) => w.raw(Uint8Array.of(Number(checkInt(v, 0n, 255n, path)))),
};
T.u32 = uint(32);
T.u64 = uint(64);
T.i64 = {
  decode: (r, path) => {
    const z = r.varint(64, path);
    return jsonInt((z & 1n) === 0n ? z >> 1n : -(z >> 1n) - 1n);
  },
  encode: (w, v, path) => {
    const n = checkInt(v, -(1n << 63n), (1n << 63n) - 1n, path);
    w.varint(n >= 0n ? n * 2n : -n * 2n - 1n);
  },
};
T.bool = {
  decode: (r, path) => {
    const b = r.byte(path);
    if (b > 1) throw new FormatError(`${path}: bad bool`);
    return b === 1;
  },
  encode: (w, v, path) => {
    if (typeof v !== 'boolean') throw new FormatError(`${path}: expected a boolean`);
    w.raw(Uint8Array.of(v ? 1 : 0));
  },
};

function readLength(r, path) {
  const n = r.varint(64, path);
  if (n > BigInt(r.bytes.length - r.at)) throw new FormatError(`${path}: length beyond input`);
  return Number(n);
}

T.string = {
  decode: (r, path) => {
    const bytes = r.take(readLength(r, path), path);
    try {
      return utf8.decode(bytes);
    } catch {
      throw new FormatError(`${path}: invalid UTF-8`);
    }
  },
  encode: (w, v, path) => {
    if (typeof v !== 'string') throw new FormatError(`${path}: expected a string`);
    const bytes = enc.encode(v);
    w.varint(bytes.length);
    w.raw(bytes);
  },
};

function fixed(length) {
  return {
    decode: (r, path) => {
      if (readLength(r, path) !== length) throw new FormatError(`${path}: expected ${length} bytes`);
      return toHex(r.take(length, path));
    },
    encode: (w, v, path) => {
      w.varint(length);
      w.raw(fromHex(v, length, path));
    },
  };
}
T.digest = fixed(32);
T.key = fixed(32);
T.sig = fixed(64);

function code(length) {
  const shape = new RegExp(`^[A-Z]{${length}}$`);
  return {
    decode: (r, path) => {
      const s = T.string.decode(r, path);
      if (!shape.test(s)) throw new FormatError(`${path}: expected ${length} capital letters`);
      return s;
    },
    encode: (w, v, path) => {
      if (typeof v !== 'string' || !shape.test(v)) {
        throw new FormatError(`${path}: expected ${length} capital letters`);
      }
      T.string.encode(w, v, path);
    },
  };
}
T.country = code(2);
T.currency = code(3);

const TIME_MS_MAX = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Milliseconds as the JSON form of §2.5, `YYYY-MM-DDTHH:MM:SS.mmmZ`. */
export function formatTimestamp(ms) {
  return new Date(ms).toISOString();
}

/** The accepted JSON spellings of §2.5, to milliseconds; anything else is refused. */
export function parseTimestamp(text, path) {
  const m = typeof text === 'string'
    && /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?Z)?$/.exec(text);
  if (!m) throw new FormatError(`${path}: not an RFC 3339 UTC time`);
  const [y, mo, d, h = 0, mi = 0, s = 0, ms = 0] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const back = new Date(t);
  // Date.UTC rolls over out-of-range fields (31 February, 24:00, leap seconds); a round trip
  // refuses them.
  if (y < 1970 || back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1
    || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi
    || back.getUTCSeconds() !== s) {
    throw new FormatError(`${path}: not a valid time`);
  }
  return t;
}

T.timestamp = {
  // Any u64 is a valid binary timestamp; like the reference, the JSON form of one beyond year
  // 9999 is that year's last instant, so a readable copy of it cannot match the bytes.
  decode: (r, path) => {
    const ms = r.varint(64, path);
    return formatTimestamp(Number(ms > BigInt(TIME_MS_MAX) ? BigInt(TIME_MS_MAX) : ms));
  },
  encode: (w, v, path) => w.varint(parseTimestamp(v, path)),
};

export function opt(inner) {
  return {
    decode: (r, path) => {
      const tag = r.byte(path);
      if (tag === 0) return null;
      if (tag === 1) return inner.decode(r, path);
      throw new FormatError(`${path}: bad option tag`);
    },
    encode: (w, v, path) => {
      if (v === null || v === undefined) {
        w.raw(Uint8Array.of(0));
      } else {
        w.raw(Uint8Array.of(1));
        inner.encode(w, v, path);
      }
    },
  };
}

export function vec(inner) {
  return {
    decode: (r, path) => {
      const n = r.varint(64, path);
      // Every element takes at least one byte: a larger count is a lie about the input.
      if (n > BigInt(r.bytes.length - r.at)) throw new FormatError(`${path}: count beyond input`);
      const out = [];
      for (let i = 0; i < Number(n); i++) out.push(inner.decode(r, `${path}[${i}]`));
      return out;
    },
    encode: (w, v, path) => {
      if (!Array.isArray(v)) throw new FormatError(`${path}: expected an array`);
      w.varint(v.length);
      v.forEach((x, i) => inner.encode(w, x, `${path}[${i}]`));
    },
  };
}

export function struct(fields) {
  return {
    fields,
    decode: (r, path) => {
      const out = {};
      for (const [name, type] of fields) out[name] = type.decode(r, `${path}.${name}`);
      return out;
    },
    encode: (w, v, path) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new FormatError(`${path}: expected an object`);
      }
      for (const [name, type] of fields) {
        const field = v[name];
        if (field === undefined && type.optional !== true) throw new FormatError(`${path}.${name}: missing`);
        type.encode(w, field, `${path}.${name}`);
      }
    },
  };
}

/** An `Option<T>` field of a struct: its JSON may also leave it out (§2.5). */
function optional(inner) {
  return { ...opt(inner), optional: true };
}

/**
 * An enum. `variants` is a list of [jsonName, payload] in variant-index order; payload is
 * null for a unit variant (JSON: the name as a string), or a type whose JSON sits under the
 * name in a one-key object.
 */
export function enumType(variants) {
  return {
    variants,
    decode: (r, path) => {
      const index = r.varint(32, path);
      if (index >= BigInt(variants.length)) throw new FormatError(`${path}: unknown variant ${index}`);
      const [name, payload] = variants[Number(index)];
      return payload === null ? name : { [name]: payload.decode(r, `${path}.${name}`) };
    },
    encode: (w, v, path) => {
      let name;
      let body;
      if (typeof v === 'string') {
        name = v;
      } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1) {
        [name] = Object.keys(v);
        body = v[name];
      } else {
        throw new FormatError(`${path}: expected a variant`);
      }
      const index = variants.findIndex(([n]) => n === name);
      if (index < 0) throw new FormatError(`${path}: unknown variant ${name}`);
      const payload = variants[index][1];
      if ((payload === null) !== (body === undefined)) throw new FormatError(`${path}: bad variant shape`);
      w.varint(index);
      if (payload !== null) payload.encode(w, body, `${path}.${name}`);
    },
  };
}

function units(...names) {
  return enumType(names.map((n) => [n, null]));
}

// ---------------------------------------------------------------------------------------
// The types of §4, §7, §8 and §9

const S = {};
S.Role = units('seller', 'carrier', 'customs_broker', 'customs_authority', 'auditor', 'admin');
S.Incoterm = units('EXW', 'FCA', 'CPT', 'CIP', 'DAP', 'DPU', 'DDP', 'FAS', 'FOB', 'CFR', 'CIF');
S.TransportDocumentKind = units(
  'air_waybill', 'bill_of_lading', 'road_consignment_note', 'rail_consignment_note', 'courier_waybill',
);
S.ValuationBasis = units('CIF', 'FOB');
S.TransportMode = units('postal', 'courier', 'freight');
S.OriginBasis = units('dispatch', 'goods');
S.CustomsRegime = enumType([
  ['full', null],
  ['de_minimis_relief', null],
  ['tax_collected_at_sale', struct([['registration_id', T.string]])],
]);
S.ClearanceOutcome = units('release', 'hold', 'inspection');
S.ProofKind = units('signature', 'photo', 'one_time_code');
S.Disposition = units('resellable', 'damaged', 'destroyed');
S.DutyRate = enumType([
  ['ad_valorem', struct([['rate_ppm', T.u32]])],
  ['specific', struct([['amount_minor', T.u64], ['unit', T.string], ['per_quantity', T.u64]])],
  ['compound', struct([
    ['rate_ppm', T.u32], ['amount_minor', T.u64], ['unit', T.string], ['per_quantity', T.u64],
  ])],
]);

S.Money = struct([['amount_minor', T.u64], ['currency', T.currency]]);
S.TaxId = struct([['scheme', T.string], ['value', T.string]]);
S.Party = struct([['name', T.string], ['country', T.country], ['tax_ids', vec(S.TaxId)]]);
// Format v4: the buyer's name, address and personal tax id are salted commitments; the ledger
// never holds the values (they are disclosed off-ledger, see verifyDisclosure).
S.Buyer = struct([
  ['name_commitment', T.digest], ['address_commitment', optional(T.digest)], ['country', T.country],
  ['tax_ids', vec(S.TaxId)], ['personal_id_commitment', optional(T.digest)],
]);
S.Parcel = struct([['sscc', T.string], ['gross_weight_grams', T.u64]]);
S.InvoiceLine = struct([
  ['line_no', T.u32], ['description', T.string], ['hs_code', T.string], ['gtin', optional(T.string)],
  ['quantity', T.u64], ['unit', T.string], ['unit_value_minor', T.u64], ['net_weight_grams', T.u64],
  ['origin_country', T.country],
]);
S.CommercialInvoice = struct([
  ['number', T.string], ['issued_at', T.timestamp], ['currency', T.currency], ['seller', S.Party],
  ['buyer', S.Buyer], ['lines', vec(S.InvoiceLine)], ['total_minor', T.u64],
  ['freight_minor', T.u64], ['insurance_minor', T.u64],
]);
S.PackingLine = struct([['sscc', T.string], ['invoice_line', T.u32], ['quantity', T.u64]]);
S.PackingList = struct([['lines', vec(S.PackingLine)]]);
S.TransportDocument = struct([['kind', S.TransportDocumentKind], ['number', T.string]]);
S.ExchangeRate = struct([
  ['from', T.currency], ['to', T.currency], ['numerator', T.u64], ['denominator', T.u64],
]);
S.DeclarationLine = struct([
  ['invoice_line', T.u32], ['hs_code', T.string], ['customs_value_minor', T.u64],
  ['duty_minor', T.u64], ['tax_minor', T.u64],
]);
S.LineQuantity = struct([['invoice_line', T.u32], ['quantity', T.u64]]);
S.ReturnedLine = struct([['invoice_line', T.u32], ['quantity', T.u64], ['disposition', S.Disposition]]);
S.TariffLine = struct([['hs_prefix', T.string], ['rate', S.DutyRate]]);
S.TariffTable = struct([
  ['jurisdiction', T.country], ['currency', T.currency], ['vat_rate_ppm', T.u32],
  ['lines', vec(S.TariffLine)],
]);
S.DeMinimisRule = struct([
  ['jurisdictions', vec(T.country)], ['origins', vec(T.country)], ['currency', T.currency],
  ['duty_free_max_minor', optional(T.u64)], ['flat_duty_per_category_minor', optional(T.u64)],
  ['tax_free_max_minor', optional(T.u64)], ['collected_at_sale_max_minor', optional(T.u64)],
  ['collected_at_sale_schemes', vec(T.string)], ['source', T.string],
  ['transport_modes', vec(S.TransportMode)], ['origins_are', S.OriginBasis],
]);
S.DeMinimisTable = struct([['rules', vec(S.DeMinimisRule)]]);
S.HsNomenclature = struct([['edition', T.string], ['subheadings', vec(T.string)]]);
S.ReferenceData = enumType([
  ['hs_nomenclature', S.HsNomenclature], ['tariff', S.TariffTable], ['de_minimis', S.DeMinimisTable],
]);
S.Member = struct([['id', T.string], ['name', T.string], ['roles', vec(S.Role)], ['key', T.key]]);
S.RulesActivation = struct([['version', T.u32], ['from_height', T.u64]]);
S.MembershipChange = enumType([
  ['admit', struct([['member', S.Member]])],
  ['rotate_key', struct([['member', T.string], ['new_key', T.key]])],
  ['revoke', struct([['member', T.string], ['reason', T.string]])],
  ['schedule_rules', struct([['activation', S.RulesActivation]])],
]);
S.Approval = struct([['admin', T.key], ['signature', T.sig]]);
S.SensorReading = struct([
  ['kind', T.string], ['unit', T.string], ['value_milli', T.i64],
  ['min_milli', optional(T.i64)], ['max_milli', optional(T.i64)],
]);

S.EventKind = enumType([
  ['ShipmentRegistered', struct([
    ['shipment_id', T.string], ['parcels', vec(S.Parcel)], ['origin', T.country],
    ['destination', T.country], ['incoterm', S.Incoterm], ['incoterm_place', T.string],
    ['invoice', S.CommercialInvoice], ['packing_list', S.PackingList],
  ])],
  ['HandoffProposed', struct([
    ['shipment_id', T.string], ['to', T.string], ['place', T.string],
    ['transport_document', optional(S.TransportDocument)],
  ])],
  ['HandoffAccepted', struct([['shipment_id', T.string], ['proposal', T.digest]])],
  ['CustomsDeclared', struct([
    ['shipment_id', T.string], ['declaration_ref', T.string], ['jurisdiction', T.country],
    ['transport_mode', S.TransportMode], ['currency', T.currency],
    ['valuation_basis', S.ValuationBasis],
    ['customs_value_minor', T.u64], ['freight_minor', T.u64], ['insurance_minor', T.u64],
    ['exchange_rate', optional(S.ExchangeRate)], ['regime', S.CustomsRegime],
    ['lines', vec(S.DeclarationLine)], ['duty_total_minor', T.u64], ['tax_total_minor', T.u64],
  ])],
  ['DutyPaid', struct([
    ['shipment_id', T.string], ['declaration', T.digest], ['amount', S.Money],
    ['payment_reference', T.string],
  ])],
  ['CustomsCleared', struct([
    ['shipment_id', T.string], ['declaration', T.digest], ['outcome', S.ClearanceOutcome],
    ['authority_reference', T.string], ['reason', T.string],
  ])],
  ['Delivered', struct([
    ['shipment_id', T.string], ['place', T.string], ['proof_kind', S.ProofKind],
    ['proof_hash', T.digest], ['received_by_commitment', T.digest],
  ])],
  ['ReturnRequested', struct([
    ['shipment_id', T.string], ['rma', T.string], ['lines', vec(S.LineQuantity)], ['reason', T.string],
  ])],
  ['ReturnReceived', struct([
    ['shipment_id', T.string], ['rma', T.string], ['lines', vec(S.ReturnedLine)],
  ])],
  ['DocumentAttested', struct([
    ['shipment_id', T.string], ['document_type', T.string], ['document_hash', T.digest],
    ['reference', T.string],
  ])],
  ['ReferenceDataPublished', struct([
    ['table_id', T.string], ['effective_from', T.timestamp], ['data', S.ReferenceData],
  ])],
  ['MembershipChanged', struct([['change', S.MembershipChange], ['approvals', vec(S.Approval)]])],
  ['TrackingScanRecorded', struct([
    ['shipment_id', T.string], ['parcels', vec(T.string)], ['biz_step', T.string],
    ['disposition', T.string], ['read_point', T.string], ['read_point_gln', optional(T.string)],
    ['biz_location', T.string], ['sensor_readings', vec(S.SensorReading)], ['exception', T.bool],
  ])],
  ['PersonalDataErased', struct([['shipment_id', T.string]])],
]);
S.Event = struct([['chain_id', T.string], ['occurred_at', T.timestamp], ['kind', S.EventKind]]);
S.SignedEvent = struct([['event', S.Event], ['signer', T.key], ['signature', T.sig]]);
S.BlockHeader = struct([
  ['chain_id', T.string], ['height', T.u64], ['prev_hash', T.digest], ['time', T.timestamp],
  ['proposer', T.key], ['event_count', T.u32], ['events_root', T.digest], ['log_size', T.u64],
  ['log_root', T.digest], ['state_root', T.digest], ['shipments_root', T.digest],
]);
S.LogEntry = struct([
  ['event_id', T.digest], ['height', T.u64], ['time', T.timestamp], ['log_index', T.u64],
  ['shipment_prev', optional(T.digest)],
]);
S.CommitSignature = struct([['validator', T.key], ['signature', T.sig]]);
S.CommitCertificate = struct([
  ['height', T.u64], ['round', T.u32], ['block_hash', T.digest], ['signatures', vec(S.CommitSignature)],
]);
S.VoteBody = struct([['chain_id', T.string], ['height', T.u64], ['round', T.u32], ['block_hash', T.digest]]);
S.GenesisMember = struct([
  ['id', T.string], ['name', T.string], ['roles', vec(S.Role)], ['key', T.key],
  ['node_key', optional(T.key)], ['voting_power', T.u64],
]);
S.Genesis = struct([
  ['chain_id', T.string], ['genesis_time', T.timestamp], ['admin_quorum', T.u32],
  ['members', vec(S.GenesisMember)], ['rules_schedule', vec(S.RulesActivation)],
]);
export const SCHEMA = S;

/** Decodes canonical bytes of `type` under §2.4: size limit, full consumption, shortest forms. */
export function decode(type, bytes, limit, what) {
  if (bytes.length > limit) throw new FormatError(`${what}: ${bytes.length} bytes, above ${limit}`);
  const r = new Reader(bytes);
  const value = type.decode(r, what);
  if (r.at !== bytes.length) throw new FormatError(`${what}: ${bytes.length - r.at} trailing bytes`);
  return value;
}

/** The canonical bytes of a JSON-form value. */
export function encode(type, json, what) {
  const w = new Writer();
  type.encode(w, json, what);
  return w.bytes();
}

/** The shipment an event kind names (§4.2), or null for the two kinds that name none. */
export function shipmentOf(kind) {
  const [name] = Object.keys(kind);
  return kind[name].shipment_id ?? null;
}

// ---------------------------------------------------------------------------------------
// Log entries, the shipment map and personal-data commitments (format v4)

/**
 * The entry hash of a log entry given in its JSON form ({event_id, height, time, log_index,
 * shipment_prev}): the RFC 6962 leaf hash of its canonical bytes, so the log's own proofs
 * and the shipment chains agree on one value per event.
 */
export async function entryHash(entry) {
  return sha256(concat(Uint8Array.of(0x00), encode(S.LogEntry, entry, 'entry')));
}

/** Where a shipment sits in the shipment map: a hash, so keys spread evenly over the tree. */
export function shipmentKey(shipmentId) {
  return domainHash(DOMAIN.shipmentKey, enc.encode(shipmentId));
}

const ZERO_DIGEST = new Uint8Array(32);

// Prefixes 0x02 and 0x03 keep map nodes apart from the log's 0x00 leaves and 0x01 nodes.
function mapLeaf(key, value) {
  return sha256(concat(Uint8Array.of(0x02), key, value));
}

function mapInterior(left, right) {
  return sha256(concat(Uint8Array.of(0x03), left, right));
}

/** Bit `i` of a key, the most significant bit of byte 0 first; 0 goes left. */
function keyBit(key, i) {
  return (key[i >> 3] >> (7 - (i & 7))) & 1;
}

/**
 * Whether `proof`, the siblings from the leaf's depth up to depth 1, shows that the shipment
 * map with root `root` sends `key` to `value` (all 32-byte arrays).
 */
export async function verifyShipmentProof(key, value, proof, root) {
  const depth = proof.length;
  if (depth > SHIPMENT_PROOF_DEPTH_MAX) return false;
  // A leaf alone in its subtree sits at the top of it: a proof whose deepest sibling is empty
  // describes a tree that cannot exist, and accepting it would give one leaf two proofs.
  if (depth > 0 && equalBytes(proof[0], ZERO_DIGEST)) return false;
  let h = await mapLeaf(key, value);
  for (const [j, sibling] of proof.entries()) {
    h = keyBit(key, depth - j - 1) === 0 ? await mapInterior(h, sibling) : await mapInterior(sibling, h);
  }
  return equalBytes(h, root);
}

/** The salted commitment to a piece of personal data (32-byte salt, UTF-8 value). */
export function personalCommitment(value, salt) {
  return domainHash(DOMAIN.personal, concat(salt, enc.encode(value)));
}

/** Each disclosable field: the event kind that holds its commitment, and where. */
const PERSONAL_FIELDS = new Map([
  ['buyer.name', ['ShipmentRegistered', (body) => body.invoice.buyer.name_commitment]],
  ['buyer.address', ['ShipmentRegistered', (body) => body.invoice.buyer.address_commitment]],
  ['buyer.personal_id', ['ShipmentRegistered', (body) => body.invoice.buyer.personal_id_commitment]],
  ['received_by', ['Delivered', (body) => body.received_by_commitment]],
]);

/** The commitment (hex) an event kind holds for a personal field, or null if it has none. */
export function commitmentOf(kind, field) {
  const place = PERSONAL_FIELDS.get(field);
  if (!place || !(place[0] in kind)) return null;
  return place[1](kind[place[0]]) ?? null;
}

// ---------------------------------------------------------------------------------------
// Ed25519 (§5.1): the point checks WebCrypto leaves out

const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function mod(a) {
  const r = a % P;
  return r < 0n ? r + P : r;
}

function pow(base, exp) {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = mod(result * b);
    b = mod(b * b);
    e >>= 1n;
  }
  return result;
}

const D = mod(-121665n * pow(121666n, P - 2n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

function littleEndian(bytes) {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

/**
 * Decompresses a point as the reference decoder does (a y not below p is reduced, not
 * refused), returning [x, y] or null when no point has that y.
 */
export function decodePoint(bytes) {
  const sign = bytes[31] >> 7;
  const y = mod(littleEndian(bytes) & ((1n << 255n) - 1n));
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
  else if (vx2 !== u) return null;
  if (Number(x & 1n) !== sign) x = mod(-x);
  return [x, y];
}

/** Whether a decoded point has order 1, 2, 4 or 8: [8]P is the identity. */
export function hasSmallOrder([x, y]) {
  // Extended coordinates (X, Y, Z) with a = −1; doubling as in Hisil–Wong–Carter–Dawson.
  let X = x;
  let Y = y;
  let Z = 1n;
  for (let i = 0; i < 3; i++) {
    const A = mod(X * X);
    const B = mod(Y * Y);
    const C = mod(2n * Z * Z);
    const Dd = mod(-A);
    const E = mod((X + Y) * (X + Y) - A - B);
    const G = mod(Dd + B);
    const F = mod(G - C);
    const H = mod(Dd - B);
    X = mod(E * F);
    Y = mod(G * H);
    Z = mod(F * G);
  }
  return X === 0n && Y === Z;
}

/** Why a key or signature fails §5.1 steps 1–3, or null when they pass. */
export function strictPrecheck(key, signature) {
  const a = decodePoint(key);
  if (a === null) return 'the key is not a curve point';
  if (hasSmallOrder(a)) return 'the key is weak (small order)';
  if (littleEndian(signature.subarray(32)) >= L) return 's is not below the group order';
  const r = decodePoint(signature.subarray(0, 32));
  if (r === null) return 'R is not a curve point';
  if (hasSmallOrder(r)) return 'R has small order';
  return null;
}

/** What verifyStrict answers when only the equation fails. */
const EQUATION_FAILS = 'the signature does not verify';
/**
 * The same for an event signature: the network's cofactored rule (§5.3) also accepts a
 * signature its key holder crafted with a small-order component in R, which this strict
 * check refuses, so the failure is a signature anomaly rather than proof of a forgery.
 */
const EVENT_EQUATION_FAILS =
  'the signature does not verify strictly: a forgery, or a signature anomaly (docs/PROTOCOL.md §5.3)';

/** Strict verification (§5.1): the prechecks here, then WebCrypto's Ed25519. */
export async function verifyStrict(key, message, signature) {
  const why = strictPrecheck(key, signature);
  if (why) return why;
  let cryptoKey;
  try {
    cryptoKey = await globalThis.crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
  } catch (e) {
    return `the key is refused by WebCrypto (${e.name || e})`;
  }
  const ok = await globalThis.crypto.subtle.verify({ name: 'Ed25519' }, cryptoKey, signature, message);
  return ok ? null : EQUATION_FAILS;
}

// ---------------------------------------------------------------------------------------
// Genesis (§9)

/**
 * The canonical bytes, hash and validator set of a genesis document in its JSON form, after
 * the checks of §9.2 a verifier needs before trusting certificates against it.
 */
export async function loadGenesis(json) {
  const bytes = encode(S.Genesis, json, 'genesis');
  // Decoding back gives the normalized form (lower-case hex, canonical times).
  const genesis = decode(S.Genesis, bytes, Infinity, 'genesis');
  const chainBytes = enc.encode(genesis.chain_id).length;
  if (chainBytes < 1 || chainBytes > 64) throw new FormatError('genesis.chain_id: 1 to 64 bytes');
  const ids = new Set();
  const keys = new Set();
  const validators = new Map();
  let total = 0n;
  for (const m of genesis.members) {
    if (ids.has(m.id)) throw new FormatError(`genesis: member ${m.id} twice`);
    ids.add(m.id);
    if (m.roles.length === 0) throw new FormatError(`genesis: member ${m.id} has no role`);
    if (keys.has(m.key)) throw new FormatError(`genesis: key of ${m.id} used twice`);
    keys.add(m.key);
    for (const k of [m.key, m.node_key]) {
      if (k === null) continue;
      const point = decodePoint(fromHex(k, 32, 'key'));
      if (point === null || hasSmallOrder(point)) throw new FormatError(`genesis: a key of ${m.id} is weak or invalid`);
    }
    const power = BigInt(m.voting_power);
    if (power > 0n) {
      if (m.node_key === null) throw new FormatError(`genesis: validator ${m.id} has no node key`);
      if (validators.has(m.node_key)) throw new FormatError(`genesis: node key of ${m.id} used twice`);
      validators.set(m.node_key, { member: m.id, name: m.name, power });
      total += power;
    }
  }
  if (validators.size === 0) throw new FormatError('genesis: no validator');
  if (total > U64_MAX) throw new FormatError('genesis: total voting power overflows');
  const admins = genesis.members.filter((m) => m.roles.includes('admin')).length;
  if (genesis.admin_quorum < 1 || genesis.admin_quorum > admins) {
    throw new FormatError('genesis.admin_quorum: must be between 1 and the number of admins');
  }
  // The rules schedule (§9.2): from height 1, heights and versions strictly ascending.
  const schedule = genesis.rules_schedule;
  if (schedule.length === 0 || schedule.length > 1000) {
    throw new FormatError('genesis.rules_schedule: 1 to 1000 entries');
  }
  if (BigInt(schedule[0].from_height) !== 1n) {
    throw new FormatError('genesis.rules_schedule[0].from_height: the first version applies from height 1');
  }
  schedule.forEach((a, i) => {
    if (a.version < 1) throw new FormatError(`genesis.rules_schedule[${i}].version: versions start at 1`);
    if (i === 0) return;
    if (BigInt(a.from_height) <= BigInt(schedule[i - 1].from_height)) {
      throw new FormatError(`genesis.rules_schedule[${i}].from_height: heights must ascend strictly`);
    }
    if (a.version <= schedule[i - 1].version) {
      throw new FormatError(`genesis.rules_schedule[${i}].version: versions must ascend strictly`);
    }
  });
  const hash = toHex(await domainHash(DOMAIN.genesis, bytes));
  return { genesis, bytes, hash, validators, totalPower: total };
}

// ---------------------------------------------------------------------------------------
// The bundle (§14)

class CheckFailure extends Error {
  constructor(check, message) {
    super(message);
    this.check = check;
  }
}

function ensure(condition, check, message) {
  if (!condition) throw new CheckFailure(check, message);
}

/** Runs `fn`, turning a format error into a failure of `check`. */
function under(check, fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    throw new CheckFailure(check, e.message);
  }
}

async function underAsync(check, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CheckFailure) throw e;
    throw new CheckFailure(check, e.message);
  }
}

const BUNDLE_FIELDS = [
  'format', 'chain_id', 'genesis_hash', 'shipment_id', 'checkpoint', 'shipment_proof', 'events', 'disclosures',
];
const EVENT_FIELDS = ['event_id', 'bytes', 'event', 'height', 'time', 'log_index', 'shipment_prev'];
const DISCLOSURE_FIELDS = ['event_id', 'field', 'value', 'salt'];

function onlyFields(value, allowed, check, what) {
  ensure(value !== null && typeof value === 'object' && !Array.isArray(value), check, `${what} is not an object`);
  for (const key of Object.keys(value)) ensure(allowed.includes(key), check, `${what} has unknown field ${key}`);
}

async function verifyCheckpoint(checkpoint, trusted) {
  const headerBytes = under('checkpoint.header_bytes', () => fromBase64(checkpoint.header_bytes, 'header_bytes'));
  const header = under('checkpoint.header_bytes', () => decode(S.BlockHeader, headerBytes, RECORD_SIZE_BYTES_MAX, 'header'));
  const readable = under('checkpoint.header', () => encode(S.BlockHeader, checkpoint.header, 'header'));
  ensure(equalBytes(readable, headerBytes), 'checkpoint.header', 'the readable header differs from header_bytes');
  ensure(header.chain_id === trusted.genesis.chain_id, 'checkpoint.header', `header chain id ${header.chain_id} is not the genesis chain id`);
  const blockHash = await domainHash(DOMAIN.block, headerBytes);
  const cert = under('checkpoint.certificate', () => decode(
    S.CommitCertificate,
    encode(S.CommitCertificate, checkpoint.certificate, 'certificate'),
    RECORD_SIZE_BYTES_MAX,
    'certificate',
  ));
  ensure(BigInt(cert.height) === BigInt(header.height), 'checkpoint.certificate', 'the certificate is for another height');
  ensure(cert.block_hash === toHex(blockHash), 'checkpoint.certificate', 'the certificate is for another block hash');
  const vote = concat(enc.encode(DOMAIN.vote), encode(S.VoteBody, {
    chain_id: trusted.genesis.chain_id, height: cert.height, round: cert.round, block_hash: cert.block_hash,
  }, 'vote'));
  const seen = new Set();
  let signed = 0n;
  for (const { validator, signature } of cert.signatures) {
    const v = trusted.validators.get(validator);
    ensure(v !== undefined, 'checkpoint.certificate', `signer ${validator} is not a genesis validator`);
    ensure(!seen.has(validator), 'checkpoint.certificate', `signer ${validator} appears twice`);
    seen.add(validator);
    const why = await verifyStrict(fromHex(validator, 32, 'validator'), vote, fromHex(signature, 64, 'signature'));
    ensure(why === null, 'checkpoint.certificate', `signature of ${v.member}: ${why}`);
    signed += v.power;
  }
  ensure(3n * signed > 2n * trusted.totalPower, 'checkpoint.certificate', `signers hold ${signed} of ${trusted.totalPower} voting power, not more than two thirds`);
  return {
    header,
    height: BigInt(header.height),
    // The header decoded from canonical bytes, so its time is in the canonical spelling.
    time: parseTimestamp(header.time, 'header.time'),
    hash: toHex(blockHash),
    shipmentsRoot: fromHex(header.shipments_root, 32, 'shipments_root'),
    signers: cert.signatures.map(({ validator }) => ({ nodeKey: validator, ...trusted.validators.get(validator) })),
  };
}

function bigIntOf(value, check, what) {
  return under(check, () => checkInt(value, 0n, U64_MAX, what));
}

/** A hex digest field as lower-case hex, or null for JSON null (or a missing field). */
function digestOrNull(value, what) {
  return value === null || value === undefined ? null : toHex(fromHex(value, 32, what));
}

/**
 * The entry hash (hex) of the log entry a bundle event claims, or null when its fields do
 * not make one: the chain checks then fail on it rather than on a guess.
 */
async function claimedEntryHash(item) {
  try {
    return toHex(await entryHash({
      event_id: item.event_id,
      height: item.height,
      time: item.time,
      log_index: item.log_index,
      shipment_prev: item.shipment_prev ?? null,
    }));
  } catch {
    return null;
  }
}

/**
 * Where the previous event sat, for the order, height, time and chain checks of the next:
 * each field is the last readable one, except `entry`, which is the previous event's own
 * (null when unreadable, so that the link to it fails).
 */
function nextPlace(place, item, entry) {
  const read = (fn, fallback) => {
    try {
      return fn();
    } catch {
      return fallback;
    }
  };
  return {
    logIndex: read(() => checkInt(item.log_index, 0n, U64_MAX, 'log_index'), place.logIndex),
    height: read(() => checkInt(item.height, 0n, U64_MAX, 'height'), place.height),
    time: read(() => parseTimestamp(item.time, 'time'), place.time),
    entry,
  };
}

const START = { logIndex: null, height: null, time: null, entry: null };

/** The event's own checks of §14.2, up to event.shipment. Sets `out.decoded` once decoded. */
async function verifySignedEvent(item, shipmentId, trusted, out) {
  const bytes = under('event.bytes', () => {
    onlyFields(item, EVENT_FIELDS, 'event.bytes', 'event');
    return fromBase64(item.bytes, 'bytes');
  });
  const decoded = under('event.bytes', () => decode(S.SignedEvent, bytes, EVENT_SIZE_BYTES_MAX, 'event'));
  out.decoded = decoded;
  const id = toHex(await domainHash(DOMAIN.event, bytes));
  ensure(typeof item.event_id === 'string' && id === item.event_id.toLowerCase(), 'event.id', `the bytes hash to ${id}`);
  const readable = under('event.json', () => encode(S.SignedEvent, item.event, 'event'));
  ensure(equalBytes(readable, bytes), 'event.json', 'the readable event differs from the bytes');
  ensure(decoded.event.chain_id === trusted.genesis.chain_id, 'event.chain_id', `chain id ${decoded.event.chain_id}`);
  const body = encode(S.Event, decoded.event, 'event');
  const why = await verifyStrict(
    fromHex(decoded.signer, 32, 'signer'),
    concat(enc.encode(DOMAIN.eventSignature), body),
    fromHex(decoded.signature, 64, 'signature'),
  );
  ensure(why === null, 'event.signature', why === EQUATION_FAILS ? EVENT_EQUATION_FAILS : why);
  ensure(shipmentOf(decoded.event.kind) === shipmentId, 'event.shipment', `the event names ${shipmentOf(decoded.event.kind) ?? 'no shipment'}`);
  return decoded;
}

/**
 * The checks of an event's log entry: its place after the previous event (`previous`, see
 * nextPlace; START for the first) and below the checkpoint, and its link in the chain.
 */
function verifyPlace(item, decoded, checkpoint, previous, first) {
  const logIndex = bigIntOf(item.log_index, 'event.order', 'log_index');
  ensure(previous.logIndex === null || logIndex > previous.logIndex, 'event.order', `log index ${logIndex} does not follow ${previous.logIndex}`);
  const height = bigIntOf(item.height, 'event.height', 'height');
  ensure(height <= checkpoint.height, 'event.height', `height ${height} is above the checkpoint's ${checkpoint.height}`);
  ensure(previous.height === null || height >= previous.height, 'event.height', `height ${height} is below the previous event's ${previous.height}`);
  const time = under('event.time', () => parseTimestamp(item.time, 'time'));
  ensure(time <= checkpoint.time, 'event.time', `time ${formatTimestamp(time)} is after the checkpoint's ${formatTimestamp(checkpoint.time)}`);
  ensure(previous.time === null || time >= previous.time, 'event.time', `time ${formatTimestamp(time)} is before the previous event's ${formatTimestamp(previous.time)}`);
  const prev = under('event.chain', () => digestOrNull(item.shipment_prev, 'shipment_prev'));
  if (first) {
    ensure(prev === null, 'event.chain', 'the first event names a previous entry: the shipment\'s start is missing');
    ensure('ShipmentRegistered' in decoded.event.kind, 'event.chain', 'the first event is not the shipment\'s registration');
  } else {
    ensure(previous.entry !== null, 'event.chain', 'the previous event\'s log entry is unreadable');
    ensure(prev === previous.entry, 'event.chain', `shipment_prev ${prev ?? 'null'} is not the previous event's entry hash ${previous.entry}: an event is missing or out of place`);
  }
  return { height: jsonInt(height), time: formatTimestamp(time) };
}

/** bundle.complete: the map proof sends the shipment to the last event's entry hash. */
async function verifyComplete(bundle, checkpoint, lastEntry) {
  const proof = under('bundle.complete', () => {
    ensure(Array.isArray(bundle.shipment_proof), 'bundle.complete', 'shipment_proof is not a list');
    ensure(bundle.shipment_proof.length <= SHIPMENT_PROOF_DEPTH_MAX, 'bundle.complete', 'shipment_proof is deeper than 256');
    return bundle.shipment_proof.map((h, i) => fromHex(h, 32, `shipment_proof[${i}]`));
  });
  ensure(lastEntry !== null, 'bundle.complete', 'the last event\'s log entry is unreadable');
  const key = await shipmentKey(bundle.shipment_id);
  const proven = await verifyShipmentProof(key, fromHex(lastEntry, 32, 'entry'), proof, checkpoint.shipmentsRoot);
  ensure(proven, 'bundle.complete', `the checkpoint's shipment map does not end the shipment at the last event (entry ${lastEntry}): an event is missing`);
}

/**
 * Only a chain of links from the checkpoint reaches an event: an event whose own checks pass
 * but which lies below a broken link (or under a failed bundle.complete) is not shown as
 * verified, since nothing ties it to a committed block.
 */
function markUnanchored(events, items, entries, complete) {
  let cut = complete;
  for (let i = events.length - 1; i >= 0; i--) {
    if (cut !== null && events[i].verdict === 'verified') {
      Object.assign(events[i], { verdict: 'failed', check: cut.check, message: `not tied to the checkpoint: ${cut.message}` });
    }
    if (cut === null && i > 0) {
      let prev = null;
      try {
        prev = digestOrNull(items[i].shipment_prev, 'shipment_prev');
      } catch {
        // unreadable: the link is broken
      }
      if (entries[i - 1] === null || prev !== entries[i - 1]) {
        cut = { check: 'event.chain', message: `the chain is broken at event #${i}` };
      }
    }
  }
}

/** The disclosure checks of §14.2; the answer says what was disclosed and whether it holds. */
async function verifyDisclosure(d, events) {
  onlyFields(d, DISCLOSURE_FIELDS, 'disclosure.event', 'disclosure');
  const id = under('disclosure.event', () => digestOrNull(d.event_id, 'event_id'));
  const event = events.find((e) => e.eventId === id);
  ensure(id !== null && event !== undefined, 'disclosure.event', `no event ${d.event_id} in the bundle`);
  // A commitment in an event the bundle does not prove says nothing; the event's own failure
  // comes first in any case, so this only keeps such a disclosure from reading as verified.
  ensure(event.verdict === 'verified', 'disclosure.event', `event ${id} did not verify`);
  ensure(PERSONAL_FIELDS.has(d.field), 'disclosure.field', `unknown field ${d.field}`);
  const commitment = commitmentOf(event.decoded.event.kind, d.field);
  ensure(commitment !== null, 'disclosure.field', `event ${id} holds no commitment for ${d.field}`);
  const salt = under('disclosure.commitment', () => fromHex(d.salt, 32, 'salt'));
  ensure(typeof d.value === 'string', 'disclosure.commitment', 'value is not a string');
  const computed = toHex(await personalCommitment(d.value, salt));
  ensure(computed === commitment, 'disclosure.commitment', `the value and salt commit to ${computed}, the event holds ${commitment}`);
}

/**
 * The checks before the events (§14.2 steps 1–6): the trusted genesis and the checkpoint.
 * The genesis hash goes into `answer` as soon as it is known, so that a page can say which
 * genesis it checked against even when the bundle is for another.
 */
async function verifyFrame(bundle, genesisJson, answer) {
  onlyFields(bundle, BUNDLE_FIELDS, 'bundle.format', 'bundle');
  ensure(bundle.format === BUNDLE_FORMAT, 'bundle.format', `format is ${bundle.format}, this verifier reads ${BUNDLE_FORMAT}`);
  ensure(typeof bundle.shipment_id === 'string', 'bundle.format', 'shipment_id is not a string');
  ensure(Array.isArray(bundle.events), 'bundle.format', 'events is not a list');
  ensure(bundle.disclosures === undefined || Array.isArray(bundle.disclosures), 'bundle.format', 'disclosures is not a list');
  const trusted = await underAsync('bundle.genesis', () => loadGenesis(genesisJson));
  Object.assign(answer, { genesisHash: trusted.hash, chainId: trusted.genesis.chain_id });
  ensure(typeof bundle.genesis_hash === 'string' && bundle.genesis_hash.toLowerCase() === trusted.hash, 'bundle.genesis', `the bundle is for genesis ${bundle.genesis_hash}, not ${trusted.hash}`);
  ensure(bundle.chain_id === trusted.genesis.chain_id, 'bundle.genesis', `chain id ${bundle.chain_id} is not ${trusted.genesis.chain_id}`);
  const count = bundle.events.length;
  ensure(count >= 1 && count <= BUNDLE_EVENTS_MAX, 'bundle.events', `${count} events, not 1 to ${BUNDLE_EVENTS_MAX}`);
  const disclosures = (bundle.disclosures ?? []).length;
  ensure(disclosures <= BUNDLE_DISCLOSURES_MAX, 'bundle.disclosures', `${disclosures} disclosures, at most ${BUNDLE_DISCLOSURES_MAX}`);
  onlyFields(bundle.checkpoint, ['header_bytes', 'header', 'certificate'], 'checkpoint.header_bytes', 'checkpoint');
  return { trusted, checkpoint: await verifyCheckpoint(bundle.checkpoint, trusted) };
}

/** What the answer says of an event before (or without) its checks. */
function eventEntry(item, verdict, check, message) {
  return {
    eventId: item && typeof item.event_id === 'string' ? item.event_id.toLowerCase() : null,
    verdict, check, message, decoded: null,
    height: item && item.height, time: item && item.time, logIndex: item && item.log_index,
  };
}

/**
 * Verifies a parsed bundle against a parsed genesis document (§14.2). Never throws: the
 * answer says which check failed first, and gives each event its own verdict so a page can
 * mark the events that did verify.
 *
 * Answer: { ok, failure: {check, message, index, eventId} | null, genesisHash, chainId,
 *   checkpoint: {height, hash, header, signers: [{nodeKey, member, name, power}]} | null,
 *   events: [{eventId, verdict: 'verified'|'failed'|'pending', check, message, decoded,
 *             height, time (block time, RFC 3339), logIndex}],
 *   disclosures: [{eventId, field, value, verdict, check, message}] }
 * `failure.index` is the event's position for event checks, the disclosure's for disclosure
 * checks, and null for the bundle's.
 */
export async function verifyBundle(bundle, genesisJson) {
  const answer = { ok: false, failure: null, genesisHash: null, chainId: null, checkpoint: null, events: [], disclosures: [] };
  const fail = (e, index = null, eventId = null) => {
    const check = e instanceof CheckFailure ? e.check : 'bundle.format';
    answer.failure ??= { check, message: e.message, index, eventId };
    return check;
  };
  const items = bundle && Array.isArray(bundle.events) ? bundle.events : [];
  // Browsers offer WebCrypto only to secure contexts (https, or a page from localhost): a
  // node opened over plain http from another host cannot be checked in the page, and saying
  // so is better than naming a check that never ran.
  if (!globalThis.crypto?.subtle) {
    answer.failure = {
      check: 'webcrypto.unavailable',
      message: 'this browser offers no WebCrypto to this page (it needs https or localhost); '
        + 'download the bundle and check it with `custody verify bundle`',
      index: null,
      eventId: null,
    };
    answer.events = items.map((item) => eventEntry(item, 'pending', null, null));
    return answer;
  }
  let frame;
  try {
    frame = await verifyFrame(bundle, genesisJson, answer);
  } catch (e) {
    const check = fail(e);
    answer.events = items.map((item) => eventEntry(item, 'failed', check, e.message));
    return answer;
  }
  const { trusted, checkpoint } = frame;
  answer.checkpoint = { height: checkpoint.height, hash: checkpoint.hash, header: checkpoint.header, signers: checkpoint.signers };
  await verifyEvents(bundle, items, trusted, checkpoint, answer, fail);
  await verifyDisclosures(bundle.disclosures ?? [], answer, fail);
  answer.ok = answer.failure === null;
  return answer;
}

/** The per-event checks, then bundle.complete, filling `answer.events`. */
async function verifyEvents(bundle, items, trusted, checkpoint, answer, fail) {
  const entries = [];
  let previous = START;
  for (const [index, item] of items.entries()) {
    const entry = eventEntry(item, 'failed', null, null);
    try {
      const decoded = await verifySignedEvent(item, bundle.shipment_id, trusted, entry);
      const place = verifyPlace(item, decoded, checkpoint, previous, index === 0);
      Object.assign(entry, { verdict: 'verified' }, place);
    } catch (e) {
      entry.check = fail(e, index, entry.eventId);
      entry.message = e.message;
    }
    answer.events.push(entry);
    entries.push(await claimedEntryHash(item));
    previous = nextPlace(previous, item, entries[index]);
  }
  let complete = null;
  try {
    await verifyComplete(bundle, checkpoint, entries[entries.length - 1]);
  } catch (e) {
    fail(e);
    complete = { check: e.check ?? 'bundle.complete', message: e.message };
  }
  markUnanchored(answer.events, items, entries, complete);
}

/** The checks of each disclosure, after the events': they need the verified events. */
async function verifyDisclosures(disclosures, answer, fail) {
  for (const [index, d] of disclosures.entries()) {
    const shown = {
      eventId: d && typeof d.event_id === 'string' ? d.event_id.toLowerCase() : null,
      field: d && d.field, value: d && d.value, verdict: 'failed', check: null, message: null,
    };
    try {
      await verifyDisclosure(d, answer.events);
      shown.verdict = 'verified';
    } catch (e) {
      shown.check = fail(e, index, shown.eventId);
      shown.message = e.message;
    }
    answer.disclosures.push(shown);
  }
}

/**
 * Checks one block header and its commit certificate against a genesis document (§8.4): the
 * block page uses it. Answer: { ok, message, genesisHash, hash, signers }.
 */
export async function verifyHeader(headerJson, certificateJson, genesisJson) {
  try {
    const trusted = await loadGenesis(genesisJson);
    const headerBytes = encode(S.BlockHeader, headerJson, 'header');
    const checkpoint = await verifyCheckpoint(
      { header_bytes: toBase64(headerBytes), header: headerJson, certificate: certificateJson },
      trusted,
    );
    return { ok: true, message: null, genesisHash: trusted.hash, hash: checkpoint.hash, signers: checkpoint.signers };
  } catch (e) {
    const check = e instanceof CheckFailure ? `${e.check}: ` : '';
    return { ok: false, message: `${check}${e.message}`, genesisHash: null, hash: null, signers: [] };
  }
}
