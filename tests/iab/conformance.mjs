// Conformance of the core's TCF and GPP decoders with the IAB reference libraries.
//
// A seeded corpus is generated with the reference *encoders* (`@iabtechlabtcf/core`'s
// SegmentEncoder and TCString.encode, `@iabgpp/cmpapi`'s GppModel and HeaderV1): random models
// over every segment layout, bitfield and range vendor encodings, edge values, publisher
// restrictions, custom purposes, every GPP section with and without its GPC sub-section, multi-
// section strings. Hand-made strings add what an encoder cannot write (malformed base64, cut-off
// bits, wrong versions, reversed ranges, values of 3, blank sections, ...), and every valid
// string is also cut short and mutated at random. Each string is decoded by the reference
// decoder and by the core's command-line decoder (`cargo run --release -p consentry-core
// --example decode -- tcf|gpp`, protocol in ../shared/iab-decoder-protocol.md), and the two are
// compared field by field.
//
// The reference is the judge, quirks included, except for the decisions documented in
// core/src/signals/mod.rs, where the core refuses what a reference decodes:
//   TCF  - no core segment (the reference fills the core with defaults stamped "now");
//        - a segment kind twice (the reference lets the last one win, field by field);
//        - segments before a v1 core (v1 has none; the reference reads them as v2 segments);
//        - a vendor range whose end precedes its start (the reference reads it as empty,
//          although it refuses the same range in a publisher restriction);
//        - vendor 0 in a publisher restriction (the reference refuses it in vendor ranges);
//   GPP  - a tcfeuv2 section the TCF rules above or @iabtechlabtcf/core refuse, or a TCF v1
//          string there (@iabgpp/cmpapi's own tcfeuv2 reader is laxer: one consent must not be
//          read two ways);
//        - a uspv1 section with a character outside the BMP (the reference keeps lone
//          surrogates);
// and where it reads less: a section the core does not support is not validated, so one the
// reference refuses for its content is accepted (and listed in unsupportedSections).
// Each of those is recognised here independently of the core (`walkTcf`, `expectGpp`)
// and the core must then answer as documented; every kind is also produced on purpose by a
// hand-made string, and the run fails if one stops being met (the list cannot go stale).
//
// Compared as the protocol says: vendor id lists as sets, publisher restrictions merged per
// (purpose, type) with empty groups dropped (as @iabtechlabtcf/core does), GPP restriction
// entries in order with their ids as sets; null fields may be absent; extra keys are allowed.
// `sectionList` is compared with the reference's restricted to the six sections the core reads;
// every other id of the header must be in the core's `unsupportedSections`.
//
// Usage: node tests/iab/conformance.mjs [--seed N] [--verbose]
// (`npm run test:iab` builds the decoder first.) Exits non-zero on any mismatch.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';
import {
  TCString, TCModel, SegmentEncoder, Segment, PurposeRestriction, GVL,
} from '@iabtechlabtcf/core';
import { GppModel, HeaderV1, RangeEntry, Sections } from '@iabgpp/cmpapi';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.DECODE_BIN || path.join(ROOT, 'target/release/examples/decode');
const args = process.argv.slice(2);
const seedAt = args.indexOf('--seed');
const SEED = Number(seedAt >= 0 ? args[seedAt + 1] : process.env.IAB_SEED || 20251201) >>> 0;
const VERBOSE = args.includes('--verbose');
const started = Date.now();

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32).

let state = SEED;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const bool = (p = 0.5) => rand() < p;
const pick = (xs) => xs[int(0, xs.length - 1)];
const subset = (n, p = 0.5) => Array.from({ length: n }, (_, i) => i + 1).filter(() => bool(p));
const shuffle = (xs) => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = int(0, i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

// Vendor id sets shaped to make the reference encoder pick each encoding.
function vendorSet() {
  switch (int(0, 7)) {
    case 0: return [];
    case 1: return subset(int(1, 45), 0.6); // short: always a bitfield
    case 2: return subset(int(46, 1200), 0.5); // dense: bitfield
    case 3: { // sparse over a wide span: range (the reference encoder walks every id to MaxVendorId)
      const max = bool(0.1) ? int(20000, 65535) : int(500, 5000);
      return [...new Set(Array.from({ length: int(1, 12) }, () => int(1, max)))];
    }
    case 4: { // contiguous blocks: range
      const out = [];
      let at = int(1, 300);
      for (let k = int(1, 6); k > 0; k--) {
        const len = int(1, 80);
        for (let i = 0; i < len && at + i <= 65535; i++) out.push(at + i);
        at += len + int(2, 3000);
      }
      return out.filter((v) => v <= 65535);
    }
    case 5: return bool(0.1) ? [65535] : [int(1, 5000)];
    case 6: return [1];
    default: return subset(int(1, 300), 0.1);
  }
}

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const letters2 = () => pick(LETTERS) + pick(LETTERS);

// ---------------------------------------------------------------------------------------------
// Bits and base64url, for hand-made strings and for reading strings independently of the core.

const DICT = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

class BitWriter {
  constructor() { this.bits = []; }
  int(value, n) {
    for (let i = n - 1; i >= 0; i--) this.bits.push(Math.floor(value / 2 ** i) % 2);
    return this;
  }
  bool(b) { this.bits.push(b ? 1 : 0); return this; }
  fib(value) { // Fibonacci code, as the GPP specification defines it
    const fibs = [1, 2];
    while (fibs[fibs.length - 1] + fibs[fibs.length - 2] <= value) {
      fibs.push(fibs[fibs.length - 1] + fibs[fibs.length - 2]);
    }
    const code = fibs.map(() => 0);
    let rest = value;
    for (let i = fibs.length - 1; i >= 0; i--) if (fibs[i] <= rest) { code[i] = 1; rest -= fibs[i]; }
    while (code.length > 1 && code[code.length - 1] === 0) code.pop();
    this.bits.push(...code, 1);
    return this;
  }
  toString(padTo = 6) {
    const bits = [...this.bits];
    while (bits.length % padTo) bits.push(0);
    while (bits.length % 6) bits.push(0);
    let s = '';
    for (let i = 0; i < bits.length; i += 6) s += DICT[parseInt(bits.slice(i, i + 6).join(''), 2)];
    return s;
  }
}

function toBits(segment) {
  let bits = '';
  for (const c of segment) {
    const v = DICT.indexOf(c);
    if (v < 0) return null;
    bits += v.toString(2).padStart(6, '0');
  }
  return bits;
}

// A TC string segment written by hand. `vendors` specs: {bits: [ids], max} or {ranges: [[a, b]],
// max, v1Default}.
function writeVendors(w, spec, v1 = false) {
  if (spec.ranges) {
    w.int(spec.max ?? Math.max(0, ...spec.ranges.flat()), 16).bool(true);
    if (v1) w.bool(spec.v1Default ?? false);
    w.int(spec.ranges.length, 12);
    for (const [a, b] of spec.ranges) {
      if (a === b && !spec.forceRange) w.bool(false).int(a, 16);
      else w.bool(true).int(a, 16).int(b, 16);
    }
  } else {
    const max = spec.max ?? Math.max(0, ...(spec.bits ?? []));
    w.int(max, 16).bool(false);
    for (let i = 1; i <= max; i++) w.bool((spec.bits ?? []).includes(i));
  }
}

function handCore(o = {}) {
  const w = new BitWriter();
  const version = o.version ?? 2;
  w.int(version, 6).int(o.created ?? 16000000000, 36).int(o.lastUpdated ?? 16000000000, 36)
    .int(o.cmpId ?? 300, 12).int(o.cmpVersion ?? 2, 12).int(o.consentScreen ?? 1, 6)
    .int(o.lang?.[0] ?? 4, 6).int(o.lang?.[1] ?? 13, 6).int(o.vendorListVersion ?? 150, 12);
  if (version === 1) {
    w.int(o.purposes ?? 0xf00000, 24);
    writeVendors(w, o.vendors ?? { bits: [1, 3] }, true);
    return w.toString();
  }
  w.int(o.policyVersion ?? 5, 6).bool(o.isServiceSpecific ?? true).bool(false).int(0, 12)
    .int(o.purposes ?? 0xff0000, 24).int(o.purposesLI ?? 0, 24).bool(false)
    .int(o.country?.[0] ?? 3, 6).int(o.country?.[1] ?? 4, 6);
  writeVendors(w, o.vendors ?? { bits: [1, 2, 5] });
  writeVendors(w, o.vendorsLI ?? { bits: [] });
  if (o.restrictions !== null) {
    const rs = o.restrictions ?? [];
    w.int(rs.length, 12);
    for (const r of rs) {
      w.int(r.purpose, 6).int(r.type, 2).int(r.ranges.length, 12);
      for (const [a, b] of r.ranges) {
        if (a === b) w.bool(false).int(a, 16);
        else w.bool(true).int(a, 16).int(b, 16);
      }
    }
  }
  return w.toString(24);
}

function handSegment(type, o = {}) {
  const w = new BitWriter().int(type, 3);
  if (type === 3) {
    w.int(o.consents ?? 0, 24).int(o.li ?? 0, 24).int(o.n ?? 0, 6);
    for (let i = 0; i < 2 * (o.n ?? 0); i++) w.bool(bool());
  } else {
    writeVendors(w, o.vendors ?? { bits: [2, 4] });
  }
  return w.toString(24);
}

// ---------------------------------------------------------------------------------------------
// TCF: the reference's reading, and the documented divergences, recognised independently.

const SEGMENT_NAMES = ['core', 'vendorsDisclosed', 'vendorsAllowed', 'publisherTC'];
const segmentKind = (part) => Math.floor(DICT.indexOf(part[0]) / 8);

// Walks a TC string's layout (the reference's, for v1 and v2) and reports
// - `found`: conditions the core refuses although `@iabtechlabtcf/core` accepts them
//   (core/src/signals/mod.rs); meaningful on strings the reference accepted;
// - `span`: how many ids its ranges name in all (the references list every one of them);
// - through `coverage`, which vendor encodings it uses, for the summary.
// Reads past the end as zeros, so it runs on any text.
function walkTcf(str, coverage) {
  const found = new Set();
  let span = 0;
  const parts = str.split('.');
  const kinds = parts.map(segmentKind);
  if (!kinds.includes(0)) found.add('no core segment');
  if (new Set(kinds).size !== kinds.length) found.add('a segment kind twice');
  const coreIndex = kinds.indexOf(0);
  const coreBits = coreIndex >= 0 ? toBits(parts[coreIndex]) : null;
  const version = coreBits ? parseInt(coreBits.slice(0, 6) || '0', 2) : 2;
  if (version === 1 && parts.length > 1) found.add('segments in a v1 string');
  parts.forEach((part, i) => {
    const bits = toBits(part);
    if (bits === null) return;
    let at = kinds[i] === 0 ? (version === 1 ? 156 : 213) : 3;
    const read = (n) => { const v = parseInt(bits.slice(at, at + n) || '0', 2); at += n; return v; };
    const entries = (inRestriction) => {
      for (let n = read(12); n > 0 && at < bits.length; n--) {
        const isRange = read(1) === 1;
        const start = read(16);
        const end = isRange ? read(16) : start;
        if (end < start && !inRestriction) found.add('reversed vendor range');
        if (start === 0 && inRestriction) found.add('vendor 0 in a restriction');
        span += Math.max(0, end - start + 1);
      }
    };
    const vendors = (label) => {
      const max = read(16);
      const range = read(1) === 1;
      coverage?.(`${label} ${range ? 'range' : 'bitfield'}`);
      if (!range) { at += max; return; }
      if (version === 1 && kinds[i] === 0) at += 1;
      entries(false);
    };
    if (kinds[i] === 0) {
      vendors('vendorConsents');
      if (version === 1) return;
      vendors('vendorLegitimateInterests');
      for (let n = read(12); n > 0 && at < bits.length; n--) {
        at += 8;
        entries(true);
      }
    } else if (kinds[i] === 1 || kinds[i] === 2) {
      vendors(SEGMENT_NAMES[kinds[i]]);
    }
  });
  return { found: [...found], span };
}

const sortedIds = (xs) => [...new Set(xs)].sort((a, b) => a - b);
const vectorIds = (v) => sortedIds([...v.values()]);
const maskIds = (v, n) => Array.from({ length: n }, (_, i) => i + 1).filter((i) => v.has(i));

function normaliseRestrictions(list) {
  const groups = new Map();
  for (const r of list) {
    const key = `${r.purposeId}-${r.restrictionType}`;
    const ids = groups.get(key) ?? [];
    groups.set(key, ids.concat(r.vendorIds));
  }
  return [...groups.entries()]
    .map(([key, ids]) => ({ key, ids: sortedIds(ids) }))
    .filter((g) => g.ids.length > 0)
    .sort((a, b) => (a.key < b.key ? -1 : 1));
}

// What the core must answer for a TC string: {reject, divergence?} or {fields}.
function expectTcf(str, coverage) {
  let m;
  try {
    m = TCString.decode(str);
  } catch (e) {
    return { reject: true, why: `reference: ${e.message}` };
  }
  const divergences = walkTcf(str, coverage).found;
  if (divergences.length) return { reject: true, divergence: divergences };
  const kinds = str.split('.').map((p) => SEGMENT_NAMES[segmentKind(p)]);
  const has = (k) => kinds.includes(k);
  const f = {
    version: m.version,
    created: m.created.getTime(),
    lastUpdated: m.lastUpdated.getTime(),
    cmpId: m.cmpId,
    cmpVersion: m.cmpVersion,
    consentScreen: m.consentScreen,
    consentLanguage: m.consentLanguage,
    vendorListVersion: m.vendorListVersion,
    purposeConsents: maskIds(m.purposeConsents, 24),
    vendorConsents: vectorIds(m.vendorConsents),
    segments: kinds,
    vendorsDisclosed: has('vendorsDisclosed') ? vectorIds(m.vendorsDisclosed) : null,
    vendorsAllowed: has('vendorsAllowed') ? vectorIds(m.vendorsAllowed) : null,
    publisherConsents: has('publisherTC') ? maskIds(m.publisherConsents, 24) : null,
    publisherLegitimateInterests: has('publisherTC') ? maskIds(m.publisherLegitimateInterests, 24) : null,
    numCustomPurposes: has('publisherTC') ? m.numCustomPurposes : null,
    publisherCustomConsents: has('publisherTC') ? maskIds(m.publisherCustomConsents, m.numCustomPurposes) : null,
    publisherCustomLegitimateInterests: has('publisherTC')
      ? maskIds(m.publisherCustomLegitimateInterests, m.numCustomPurposes) : null,
  };
  if (m.version === 2) {
    Object.assign(f, {
      tcfPolicyVersion: m.policyVersion,
      isServiceSpecific: m.isServiceSpecific,
      useNonStandardTexts: m.useNonStandardTexts,
      purposeOneTreatment: m.purposeOneTreatment,
      specialFeatureOptins: maskIds(m.specialFeatureOptins, 12),
      purposeLegitimateInterests: maskIds(m.purposeLegitimateInterests, 24),
      publisherCountryCode: m.publisherCountryCode,
      vendorLegitimateInterests: vectorIds(m.vendorLegitimateInterests),
      publisherRestrictions: m.publisherRestrictions.getRestrictions().map((r) => ({
        purposeId: r.purposeId,
        restrictionType: r.restrictionType,
        vendorIds: m.publisherRestrictions.getVendors(r),
      })),
    });
  }
  return { fields: f };
}

const ID_LIST_KEYS = new Set([
  'vendorConsents', 'vendorLegitimateInterests', 'vendorsDisclosed', 'vendorsAllowed',
  'VendorConsents', 'VendorLegitimateInterests', 'VendorsDisclosed', 'VendorsAllowed',
]);

function sameValue(key, expected, actual) {
  if (key === 'publisherRestrictions') {
    return JSON.stringify(normaliseRestrictions(expected))
      === JSON.stringify(normaliseRestrictions(actual ?? []));
  }
  if (key === 'PublisherRestrictions') {
    const norm = (list) => (list ?? []).map((r) => ({ key: r.key, type: r.type, ids: sortedIds(r.ids) }));
    return JSON.stringify(norm(expected)) === JSON.stringify(norm(actual));
  }
  if (ID_LIST_KEYS.has(key) && Array.isArray(expected) && Array.isArray(actual)) {
    return JSON.stringify(sortedIds(expected)) === JSON.stringify(sortedIds(actual));
  }
  return JSON.stringify(expected) === JSON.stringify(actual ?? null);
}

// Field-by-field differences between what the reference reads and what the core printed.
function diffFields(expected, actual, prefix = '') {
  const diffs = [];
  for (const [key, value] of Object.entries(expected)) {
    if (value === null && actual[key] === undefined) continue;
    if (!sameValue(key, value, actual[key])) {
      diffs.push(`${prefix}${key}: reference ${JSON.stringify(value)}, core ${JSON.stringify(actual[key])}`);
    }
  }
  return diffs;
}

// ---------------------------------------------------------------------------------------------
// GPP: the reference's reading, and the documented divergences.

const SUPPORTED = new Map([[2, 'tcfeuv2'], [6, 'uspv1'], [7, 'usnat'], [8, 'usca'], [9, 'usva'], [10, 'usco']]);
const SECTION_NAMES = new Map(Sections.SECTION_ID_NAME_MAP);
// A valid encoding of every section the reference knows: what an unsupported section is
// replaced with to tell "the reference refuses this section's content" from other refusals.
const DEFAULT_SECTION = new Map();
for (const [id, name] of Sections.SECTION_ID_NAME_MAP) {
  const model = new GppModel();
  model.decodeSection(name, '');
  DEFAULT_SECTION.set(id, model.encodeSection(name));
}

function rawHeaderIds(str) {
  if (!str.startsWith('DB')) return null;
  try {
    return new HeaderV1(str.split('~')[0]).getFieldValue('SectionIds');
  } catch {
    return undefined;
  }
}

function referenceGpp(str) {
  const model = new GppModel(str);
  const ids = model.getSectionIds();
  const object = model.toObject();
  // toObject() leaves out GpcSegmentIncluded (it is not an encoded field); the protocol adds it.
  for (const name of ['usnat', 'usca', 'usco']) {
    if (object[name]) object[name].GpcSegmentIncluded = model.getFieldValue(name, 'GpcSegmentIncluded');
  }
  return { ids, object };
}

const plain = (v) => {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number' && Number.isNaN(v)) return null;
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    if (v instanceof RangeEntry) return { key: v.key, type: v.type, ids: v.ids };
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
};

// What the core must answer for a GPP string.
function expectGpp(str) {
  let ref;
  const divergence = [];
  try {
    ref = referenceGpp(str);
  } catch (e) {
    // Refused: is it only the content of sections the core does not read?
    const header = rawHeaderIds(str);
    const parts = str.split('~');
    if (!header || header.length !== parts.length - 1) return { reject: true, why: `reference: ${e.message}` };
    const swapped = [parts[0], ...parts.slice(1).map((p, i) => (
      !SUPPORTED.has(header[i]) && DEFAULT_SECTION.has(header[i]) && p.trim() !== '' ? DEFAULT_SECTION.get(header[i]) : p))];
    try {
      ref = referenceGpp(swapped.join('~'));
    } catch {
      return { reject: true, why: `reference: ${e.message}` };
    }
    divergence.push('unsupported section not validated');
  }
  // The tcfeuv2 section is read by the TCF rules.
  let tcfText = null;
  const header = rawHeaderIds(str);
  if (header) {
    const i = header.indexOf(2);
    if (i >= 0) tcfText = str.split('~')[i + 1];
  } else if (str.startsWith('C')) {
    tcfText = str;
  }
  if (tcfText !== null) {
    const tcf = expectTcf(tcfText);
    if (tcf.reject) {
      const why = tcf.divergence ?? [`@iabtechlabtcf/core refuses it: ${tcf.why.replace(/^reference: /, '').replace(/\d+/g, 'N')}`];
      return { reject: true, divergence: [`tcfeuv2 by the TCF rules (${why.join(', ')})`] };
    }
    if (tcf.fields.version !== 2) return { reject: true, divergence: ['tcfeuv2 by the TCF rules (version 1)'] };
  }
  // uspv1 with a surrogate pair: the reference keeps lone surrogates, the core refuses.
  if (header) {
    const i = header.indexOf(6);
    const usp = i >= 0 ? str.split('~')[i + 1].split('.')[0] : '';
    if ([...usp].length !== usp.length) return { reject: true, divergence: ['uspv1 outside the BMP'] };
  }
  const ids = ref.ids.filter((id) => SUPPORTED.has(id));
  const parsed = {};
  for (const id of ids) parsed[SUPPORTED.get(id)] = plain(ref.object[SUPPORTED.get(id)]);
  return {
    divergence,
    fields: {
      sectionList: ids,
      sectionNames: ids.map((id) => SUPPORTED.get(id)),
      headerSectionIds: header ?? null,
      unsupportedSections: (header ?? []).filter((id) => !SUPPORTED.has(id)),
      parsedSections: parsed,
    },
  };
}

function diffGpp(expected, actual) {
  const diffs = [];
  for (const key of ['sectionList', 'sectionNames', 'headerSectionIds', 'unsupportedSections']) {
    if (JSON.stringify(expected[key]) !== JSON.stringify(actual[key] ?? null)) {
      diffs.push(`${key}: reference ${JSON.stringify(expected[key])}, core ${JSON.stringify(actual[key])}`);
    }
  }
  for (const [name, fields] of Object.entries(expected.parsedSections)) {
    const mine = actual.parsedSections?.[name];
    if (!mine) { diffs.push(`parsedSections.${name}: missing`); continue; }
    diffs.push(...diffFields(fields, mine, `${name}.`));
  }
  return diffs;
}

// ---------------------------------------------------------------------------------------------
// The TCF corpus.

const tcf = []; // {text, kind}
const addTcf = (text, kind) => tcf.push({ text, kind });

function randomTcModel(v1 = false) {
  const m = new TCModel();
  m.cmpId = pick([2, 3, 4095, int(2, 4095)]);
  m.cmpVersion = pick([0, 4095, int(0, 4095)]);
  m.consentScreen = int(0, 63);
  m.consentLanguage = letters2();
  m.vendorListVersion = pick([0, 4095, int(1, 400)]);
  m.policyVersion = pick([0, 2, 4, 5, 63, int(0, 63)]);
  m.isServiceSpecific = bool(0.8);
  m.useNonStandardTexts = bool(0.2);
  m.purposeOneTreatment = bool(0.2);
  m.publisherCountryCode = bool(0.2) ? letters2().toLowerCase() : letters2();
  m.created = new Date(pick([0, 2 ** 36 - 1, int(15000000000, 18000000000)]) * 100);
  m.lastUpdated = new Date(pick([0, 2 ** 36 - 1, int(15000000000, 18000000000)]) * 100);
  m.specialFeatureOptins.set(subset(12));
  m.purposeConsents.set(pick([[], subset(24), subset(11, 0.8), Array.from({ length: 24 }, (_, i) => i + 1)]));
  m.purposeLegitimateInterests.set(subset(24, 0.3));
  let vendors = vendorSet();
  if (v1) vendors = vendors.filter((v) => v <= 45); // the reference writes no v1 range default bit
  m.vendorConsents.set(vendors);
  m.vendorLegitimateInterests.set(vendorSet());
  if (bool(0.5)) {
    const universe = bool() ? null : new Set(subset(400, 0.3));
    const restricted = [];
    for (let k = int(1, 6); k > 0; k--) {
      const purpose = pick([1, 2, 7, 10, 24, int(1, 63)]);
      const type = int(0, 2);
      // Vendor ids kept low: a range across ids the GVL lacks makes the reference add every id.
      const vendors = pick([[int(1, 400)], subset(int(1, 300), 0.2), vendorSet().filter((v) => v <= 600)]);
      for (const v of vendors) restricted.push([v, purpose, type]);
    }
    const ids = universe ?? new Set(restricted.map(([v]) => v).concat(subset(600, 0.9)));
    for (const [v] of restricted) ids.add(v);
    m.publisherRestrictions.gvl = { vendorIds: ids };
    for (const [v, purpose, type] of restricted) m.publisherRestrictions.add(v, new PurposeRestriction(purpose, type));
  }
  m.vendorsDisclosed.set(vendorSet());
  m.vendorsAllowed.set(vendorSet());
  m.publisherConsents.set(subset(24, 0.3));
  m.publisherLegitimateInterests.set(subset(24, 0.3));
  m.numCustomPurposes = pick([0, 1, 63, int(0, 63)]);
  m.publisherCustomConsents.set(subset(m.numCustomPurposes));
  m.publisherCustomLegitimateInterests.set(subset(m.numCustomPurposes));
  if (v1) m.version = 1;
  return m;
}

const LAYOUTS = [
  [], ['vendorsDisclosed'], ['publisherTC'], ['vendorsAllowed'], ['vendorsDisclosed', 'publisherTC'],
  ['vendorsDisclosed', 'vendorsAllowed'], ['vendorsDisclosed', 'vendorsAllowed', 'publisherTC'],
  ['publisherTC', 'vendorsDisclosed'], ['vendorsAllowed', 'publisherTC', 'vendorsDisclosed'],
];

const validTcf = [];
for (let i = 0; i < 1500; i++) {
  const m = randomTcModel();
  const layout = pick(LAYOUTS);
  const parts = [SegmentEncoder.encode(m, Segment.CORE), ...layout.map((s) => SegmentEncoder.encode(m, s))];
  // The specification puts the core first; the reference reads the core anywhere.
  const text = (bool(0.08) && parts.length > 1 ? shuffle(parts) : parts).join('.');
  addTcf(text, 'random (reference SegmentEncoder)');
  validTcf.push(text);
}
for (let i = 0; i < 150; i++) {
  const m = randomTcModel(true);
  const text = SegmentEncoder.encode(m, Segment.CORE);
  addTcf(text, 'TCF v1 (reference SegmentEncoder)');
  validTcf.push(text);
}

// Through TCString.encode with a synthetic GVL: the full encoder, its segment sequences.
{
  const vendors = {};
  for (let id = 1; id <= 600; id++) {
    vendors[id] = {
      id, name: `v${id}`, purposes: [1, 2, 3, 4, 7], legIntPurposes: [2, 7, 8, 9, 10], flexiblePurposes: [2, 7],
      specialPurposes: [1], features: [], specialFeatures: [], policyUrl: 'https://example.com',
    };
  }
  const purposes = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [i + 1, { id: i + 1, name: `p${i + 1}`, description: '' }]));
  const gvl = new GVL({
    gvlSpecificationVersion: 3, vendorListVersion: 77, tcfPolicyVersion: 5, lastUpdated: '2025-01-01T00:00:00Z',
    purposes, specialPurposes: { 1: { id: 1, name: 's', description: '' } }, features: {},
    specialFeatures: { 1: { id: 1, name: 'f', description: '' } }, stacks: {}, dataCategories: {}, vendors,
  });
  for (let i = 0; i < 120; i++) {
    const m = new TCModel(gvl);
    m.cmpId = int(2, 4095);
    m.cmpVersion = int(0, 4095);
    m.isServiceSpecific = bool(0.7);
    m.supportOOB = bool();
    m.purposeConsents.set(subset(11));
    m.purposeLegitimateInterests.set(subset(11));
    m.vendorConsents.set(subset(600, pick([0.02, 0.5, 0.95])));
    m.vendorLegitimateInterests.set(subset(600, 0.3));
    m.vendorsDisclosed.set(subset(600, 0.4));
    m.vendorsAllowed.set(subset(600, pick([0, 0.1])));
    if (bool()) m.publisherRestrictions.add(int(1, 600), new PurposeRestriction(pick([2, 7]), int(0, 2)));
    m.publisherConsents.set(subset(11));
    const text = TCString.encode(m, { isForVendors: bool() });
    addTcf(text, 'random (reference TCString.encode with a GVL)');
    validTcf.push(text);
  }
}

// Edge values.
{
  const m = new TCModel();
  m.cmpId = 4095; m.cmpVersion = 4095; m.consentScreen = 63; m.vendorListVersion = 4095;
  m.policyVersion = 63; m.consentLanguage = 'ZZ'; m.publisherCountryCode = 'ZZ';
  m.isServiceSpecific = true; m.useNonStandardTexts = true; m.purposeOneTreatment = true;
  m.created = new Date((2 ** 36 - 1) * 100); m.lastUpdated = new Date((2 ** 36 - 1) * 100);
  const all = (n) => Array.from({ length: n }, (_, i) => i + 1);
  m.specialFeatureOptins.set(all(12)); m.purposeConsents.set(all(24)); m.purposeLegitimateInterests.set(all(24));
  m.vendorConsents.set(all(65535)); m.vendorLegitimateInterests.set([65535]);
  m.vendorsDisclosed.set(all(65535)); m.vendorsAllowed.set([1, 65535]);
  m.publisherConsents.set(all(24)); m.publisherLegitimateInterests.set(all(24));
  m.numCustomPurposes = 63; m.publisherCustomConsents.set(all(63)); m.publisherCustomLegitimateInterests.set(all(63));
  m.publisherRestrictions.gvl = { vendorIds: new Set(all(65535)) };
  for (const v of [1, 2, 3, 65535]) m.publisherRestrictions.add(v, new PurposeRestriction(63, 2));
  const segs = [Segment.CORE, Segment.VENDORS_DISCLOSED, Segment.VENDORS_ALLOWED, Segment.PUBLISHER_TC];
  addTcf(segs.map((s) => SegmentEncoder.encode(m, s)).join('.'), 'edge values');
  const z = new TCModel();
  z.cmpId = 2; z.created = new Date(0); z.lastUpdated = new Date(0); z.consentLanguage = 'AA'; z.publisherCountryCode = 'AA';
  addTcf(segs.map((s) => SegmentEncoder.encode(z, s)).join('.'), 'edge values');
  addTcf(SegmentEncoder.encode(z, Segment.CORE), 'edge values');
  // Known strings from the IAB documentation.
  addTcf('CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA', 'IAB documentation');
  addTcf('CQSbk4AQSbk4ANwAAAENAwCgAAAAAAAAAAYgACPAAAAA.IDKQA4AAgAKAGQAygAAA.YAAAAAAAAAAA', 'IAB documentation');
  addTcf('CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA', 'IAB documentation');
}

// Hand-made strings: malformed, quirks the reference has, and the documented divergences.
const HAND_TCF = [
  ['', 'empty'], ['.', 'empty segments'], ['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA.', 'trailing dot'],
  ['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA..IDKQA4AAgAKAGQAygAAA', 'empty middle segment'],
  ['CPXxRfAPXxRfAAfKABENB+CgAAAAAAAAAAYgAAAAAAAA', 'standard base64 +'],
  ['CPXxRfAPXxRfAAfKABENB/CgAAAAAAAAAAYgAAAAAAAA', 'standard base64 /'],
  ['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA==', 'padding'],
  [' CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA', 'leading space'],
  ['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA ', 'trailing space'],
  ['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA\r', 'trailing CR'],
  ['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAAé', 'non-ASCII'],
  ['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA😀', 'astral'],
  ['DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA', 'a GPP string as TCF'],
  ['1YNN', 'a US Privacy string as TCF'],
  [handCore({ version: 0 }), 'version 0'], [handCore({ version: 3 }), 'version 3'], [handCore({ version: 63 }), 'version 63'],
  [handCore({ cmpId: 0 }), 'CMP id 0'], [handCore({ cmpId: 1 }), 'CMP id 1'], [handCore({ cmpId: 2 }), 'CMP id 2'],
  [handCore({ country: [25, 25] }), 'country ZZ'], [handCore({ country: [26, 31] }), 'country [` (reference accepts)'],
  [handCore({ country: [32, 57] }), 'country az (upper-cased)'], [handCore({ country: [58, 3] }), 'country code 58'],
  [handCore({ country: [3, 63] }), 'country code 63'], [handCore({ lang: [63, 62] }), 'consent language codes 63, 62'],
  [handCore({ vendors: { bits: [], max: 0 } }), 'MaxVendorId 0 bitfield'],
  [handCore({ vendors: { ranges: [], max: 0 } }), 'MaxVendorId 0 range'],
  [handCore({ vendors: { ranges: [[10, 20]], max: 5 } }), 'range beyond MaxVendorId'],
  [handCore({ vendors: { ranges: [[5, 5]], max: 5, forceRange: true } }), 'range of one written as a range'],
  [handCore({ vendors: { ranges: [[1, 3], [2, 9], [9, 9]], max: 9 } }), 'overlapping ranges'],
  [handCore({ vendors: { ranges: [[9, 9], [1, 3]], max: 9 } }), 'ranges out of order'],
  [handCore({ vendors: { ranges: [[0, 0]], max: 5 } }), 'vendor 0 in a vendor range'],
  [handCore({ vendors: { ranges: [[0, 4]], max: 5 } }), 'range from vendor 0'],
  [handCore({ vendors: { ranges: [[9, 3]], max: 9 } }), 'reversed vendor range'],
  [handCore({ vendorsLI: { ranges: [[1, 2], [7, 6]], max: 9 } }), 'reversed LI range'],
  [handCore({ restrictions: [{ purpose: 2, type: 1, ranges: [[5, 9]] }, { purpose: 2, type: 1, ranges: [[1, 1]] }] }), 'repeated restriction group'],
  [handCore({ restrictions: [{ purpose: 0, type: 1, ranges: [] }] }), 'restriction of purpose 0 with no vendors'],
  [handCore({ restrictions: [{ purpose: 3, type: 3, ranges: [] }] }), 'restriction of type 3 with no vendors'],
  [handCore({ restrictions: [{ purpose: 0, type: 1, ranges: [[3, 3]] }] }), 'restriction of purpose 0'],
  [handCore({ restrictions: [{ purpose: 3, type: 3, ranges: [[3, 3]] }] }), 'restriction of type 3'],
  [handCore({ restrictions: [{ purpose: 3, type: 0, ranges: [[0, 0]] }] }), 'vendor 0 in a restriction'],
  [handCore({ restrictions: [{ purpose: 3, type: 0, ranges: [[0, 3]] }] }), 'restriction range from vendor 0'],
  [handCore({ restrictions: [{ purpose: 3, type: 0, ranges: [[9, 3]] }] }), 'reversed restriction range'],
  [handCore({ restrictions: [{ purpose: 63, type: 2, ranges: [[1, 65535]] }] }), 'restriction of every vendor'],
  [handCore({ restrictions: null }), 'core without its restrictions field (padded)'],
  [handCore({ restrictions: null, vendors: { bits: [1], max: 3 } }).slice(0, -2), 'core ending inside NumPubRestrictions'],
  [handCore({ version: 1 }), 'v1 bitfield'],
  [handCore({ version: 1, vendors: { ranges: [[1, 4], [8, 8]], max: 8 } }), 'v1 range'],
  [handCore({ version: 1, vendors: { ranges: [[1, 4]], max: 8, v1Default: true } }), 'v1 range with default consent'],
  [handCore({ version: 1, vendors: { ranges: [[6, 2]], max: 8 } }), 'v1 reversed range'],
  [`${handCore({ version: 1 })}.${handSegment(1)}`, 'v1 with a segment after the core'],
  [`${handSegment(1)}.${handCore({ version: 1 })}`, 'v1 with a segment before the core'],
  [handSegment(1), 'vendors disclosed alone (no core)'],
  [`${handSegment(3, { n: 4 })}.${handSegment(1)}`, 'segments without a core'],
  [`${handCore()}.${handCore()}`, 'core twice'],
  [`${handCore()}.${handSegment(1)}.${handSegment(1, { vendors: { bits: [7] } })}`, 'vendors disclosed twice'],
  [`${handSegment(3, { n: 2 })}.${handCore()}`, 'core after the publisher TC segment'],
  [`${handCore()}.${handSegment(4)}`, 'segment type 4'], [`${handCore()}.${handSegment(7)}`, 'segment type 7'],
  [`${handCore()}.${handSegment(1, { vendors: { ranges: [[5, 1]], max: 5 } })}`, 'reversed range in vendors disclosed'],
  [`${handCore()}.${handSegment(2, { vendors: { ranges: [[5, 1]], max: 5 } })}`, 'reversed range in vendors allowed'],
  [`${handCore()}.${handSegment(3, { n: 0 })}`, 'publisher TC with no custom purposes'],
  [`${handCore()}.${handSegment(3, { n: 63 })}`, 'publisher TC with 63 custom purposes'],
  [`${handCore()}.YAAAAAAAAAA`, 'publisher TC cut in its custom bits'],
  [`${handCore()}.I`, 'vendors disclosed of one character'],
  [`${handCore()}.${handSegment(1)}AAAAAAAA`, 'trailing bits'],
];
for (const [text, kind] of HAND_TCF) addTcf(text, `hand-made: ${kind}`);

// Every prefix of some valid strings, and random mutations.
for (const text of validTcf.slice(0, 30)) {
  for (let n = 1; n < text.length; n += int(1, 3)) addTcf(text.slice(0, n), 'cut short');
}
const MUTATE_CHARS = `${DICT}.+/= é`;
function mutate(text) {
  const chars = [...text];
  for (let k = int(1, 3); k > 0; k--) {
    const at = int(0, chars.length - 1);
    switch (int(0, 3)) {
      case 0: chars[at] = pick([...MUTATE_CHARS]); break;
      case 1: chars.splice(at, 1); break;
      case 2: chars.splice(at, 0, pick([...DICT])); break;
      default: chars[at] = DICT[DICT.indexOf(chars[at]) ^ (1 << int(0, 5))] ?? chars[at];
    }
  }
  return chars.join('');
}
// A mutant whose ranges name more than MAX_SPAN ids in all is drawn again: the references list
// every id one by one (@iabgpp/cmpapi in an array without removing repeats, which can abort Node
// with an invalid array size), so such strings only slow the run down. The core's own handling
// of them is property-tested natively (core/tests/signals.rs).
const MAX_SPAN = 200000;
for (let i = 0; i < 1000; i++) {
  let text;
  do text = mutate(pick(validTcf)); while (walkTcf(text).span > MAX_SPAN);
  addTcf(text, 'mutated');
}

// ---------------------------------------------------------------------------------------------
// The GPP corpus.

const gpp = [];
const addGpp = (text, kind) => gpp.push({ text, kind });
const v012 = () => pick([0, 1, 2]);
const list012 = (n) => Array.from({ length: n }, v012);

function fillUs(model, name) {
  const fields = {
    usnat: ['SharingNotice', 'SaleOptOutNotice', 'SharingOptOutNotice', 'TargetedAdvertisingOptOutNotice',
      'SensitiveDataProcessingOptOutNotice', 'SensitiveDataLimitUseNotice', 'SaleOptOut', 'SharingOptOut',
      'TargetedAdvertisingOptOut', 'PersonalDataConsents', 'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    usca: ['SaleOptOutNotice', 'SharingOptOutNotice', 'SensitiveDataLimitUseNotice', 'SaleOptOut', 'SharingOptOut',
      'PersonalDataConsents', 'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    usva: ['SharingNotice', 'SaleOptOutNotice', 'TargetedAdvertisingOptOutNotice', 'SaleOptOut',
      'TargetedAdvertisingOptOut', 'KnownChildSensitiveDataConsents', 'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    usco: ['SharingNotice', 'SaleOptOutNotice', 'TargetedAdvertisingOptOutNotice', 'SaleOptOut',
      'TargetedAdvertisingOptOut', 'KnownChildSensitiveDataConsents', 'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
  }[name];
  for (const f of fields) model.setFieldValue(name, f, v012());
  model.setFieldValue(name, 'MspaCoveredTransaction', pick([1, 2]));
  const lists = { usnat: [16, 3], usca: [9, 2], usva: [8, 0], usco: [7, 0] }[name];
  model.setFieldValue(name, 'SensitiveDataProcessing', list012(lists[0]));
  if (lists[1]) model.setFieldValue(name, 'KnownChildSensitiveDataConsents', list012(lists[1]));
  if (name === 'usnat') model.setFieldValue(name, 'Version', pick([1, 2, 2]));
  if (name !== 'usva') {
    model.setFieldValue(name, 'GpcSegmentIncluded', bool(0.6));
    model.setFieldValue(name, 'Gpc', bool());
  }
}

function fillTcfEuV2(model) {
  const s = 'tcfeuv2';
  model.setFieldValue(s, 'CmpId', int(0, 4095));
  model.setFieldValue(s, 'CmpVersion', int(0, 4095));
  model.setFieldValue(s, 'ConsentScreen', int(0, 63));
  model.setFieldValue(s, 'ConsentLanguage', letters2());
  model.setFieldValue(s, 'VendorListVersion', int(0, 4095));
  model.setFieldValue(s, 'PolicyVersion', int(0, 63));
  model.setFieldValue(s, 'UseNonStandardStacks', bool());
  model.setFieldValue(s, 'SpecialFeatureOptins', Array.from({ length: 12 }, () => bool()));
  model.setFieldValue(s, 'PurposeConsents', Array.from({ length: 24 }, () => bool()));
  model.setFieldValue(s, 'PurposeLegitimateInterests', Array.from({ length: 24 }, () => bool()));
  model.setFieldValue(s, 'PurposeOneTreatment', bool());
  model.setFieldValue(s, 'PublisherCountryCode', letters2());
  model.setFieldValue(s, 'VendorConsents', sortedIds(vendorSet()));
  model.setFieldValue(s, 'VendorLegitimateInterests', sortedIds(vendorSet()));
  if (bool()) {
    model.setFieldValue(s, 'PublisherRestrictions', Array.from({ length: int(1, 4) }, () => (
      new RangeEntry(int(1, 24), int(0, 2), sortedIds(bool() ? vendorSet() : [int(1, 900)])))));
  }
  model.setFieldValue(s, 'PublisherConsents', Array.from({ length: 24 }, () => bool()));
  model.setFieldValue(s, 'PublisherLegitimateInterests', Array.from({ length: 24 }, () => bool()));
  const n = pick([0, 1, int(0, 63)]);
  model.setFieldValue(s, 'NumCustomPurposes', n);
  model.setFieldValue(s, 'PublisherCustomConsents', Array.from({ length: n }, () => bool()));
  model.setFieldValue(s, 'PublisherCustomLegitimateInterests', Array.from({ length: n }, () => bool()));
  model.setFieldValue(s, 'VendorsDisclosed', sortedIds(vendorSet()));
  model.setFieldValue(s, 'Created', new Date(int(15000000000, 18000000000) * 100));
}

const UNSUPPORTED_FILL = {
  tcfcav1: (m) => m.setFieldValue('tcfcav1', 'CmpId', int(2, 4095)),
  usut: (m) => m.setFieldValue('usut', 'SaleOptOut', v012()),
  usct: (m) => m.setFieldValue('usct', 'SaleOptOut', v012()),
  usfl: (m) => m.setFieldValue('usfl', 'SaleOptOut', v012()),
  ustx: (m) => m.setFieldValue('ustx', 'SaleOptOut', v012()),
  usri: (m) => m.setFieldValue('usri', 'SaleOptOut', v012()),
};

const validGpp = [];
for (let i = 0; i < 1500; i++) {
  const model = new GppModel();
  const names = shuffle(['tcfeuv2', 'uspv1', 'usnat', 'usca', 'usva', 'usco', 'usnat', 'usca'])
    .slice(0, int(1, 4));
  for (const name of names) {
    if (name === 'tcfeuv2') fillTcfEuV2(model);
    else if (name === 'uspv1') {
      for (const f of ['Notice', 'OptOutSale', 'LspaCovered']) model.setFieldValue('uspv1', f, pick(['Y', 'N', '-']));
    } else fillUs(model, name);
  }
  if (bool(0.15)) pick(Object.values(UNSUPPORTED_FILL))(model);
  const text = model.encode();
  addGpp(text, 'random (reference GppModel)');
  validGpp.push(text);
}
// TC strings from the TCF corpus as tcfeuv2 sections, with other sections: headers by HeaderV1.
const assemble = (sections) => {
  const sorted = [...sections].sort((a, b) => a[0] - b[0]);
  const header = new HeaderV1();
  header.setFieldValue('SectionIds', sorted.map(([id]) => id));
  return [header.encode(), ...sorted.map(([, text]) => text)].join('~');
};
for (let i = 0; i < 400; i++) {
  const sections = [[2, pick(validTcf)]];
  if (bool()) sections.push([6, pick(['1YNN', '1YYY', '1---', '1NYN'])]);
  if (bool()) {
    const m = new GppModel();
    fillUs(m, 'usnat');
    sections.push([7, m.encodeSection('usnat')]);
  }
  const text = assemble(sections);
  addGpp(text, 'TC strings from the TCF corpus in GPP');
  validGpp.push(text);
}
for (let i = 0; i < 60; i++) addGpp(pick(validTcf.filter((t) => t.startsWith('C'))), 'bare TC string as GPP');
for (let i = 0; i < 20; i++) addGpp(pick(validTcf.filter((t) => t.startsWith('B'))), 'bare TCF v1 string as GPP');

// Hand-made GPP strings. US core sub-sections written bit by bit (values of 3, old layouts).
const usBits = (version, values, pad = 8) => {
  const w = new BitWriter().int(version, 6);
  for (const v of values) w.int(v, 2);
  return w.toString(pad);
};
const gpcBits = (type, gpc) => new BitWriter().int(type, 2).bool(gpc).toString();
const gppHeader = (...ids) => { const h = new HeaderV1(); h.setFieldValue('SectionIds', ids); return h.encode(); };
const fibHeader = (entries) => { // [[single]] or [[start, len]] as offsets, raw
  const w = new BitWriter().int(3, 6).int(1, 6).int(entries.length, 12);
  for (const e of entries) { w.bool(e.length === 2); for (const v of e) w.fib(v); }
  return w.toString();
};
const USNAT_V2 = Array.from({ length: 32 }, (_, i) => [1, 2, 1, 1, 0, 0, 1, 2, 2][i] ?? (i < 28 ? 2 : 1));
const HAND_GPP = [
  ['', 'empty string'], ['DBAA', 'header with no sections'], ['DB', 'header cut short'], ['DBAA~', 'no sections but a ~'],
  ['DBABM', 'a section listed but absent'], ['DBABM~', 'a blank section'], ['DBABM~ ', 'a space section'],
  ['DBABM~\u00a0', 'a no-break-space section'], ['DBABM~\ufeff', 'a BOM section'], ['DBABM~\u0085', 'a NEL section (not JS whitespace)'],
  ['DCABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA', 'header version 2'],
  ['DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA', 'IAB documentation'],
  ['DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN', 'IAB documentation'],
  ['DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN', 'IAB documentation'],
  ['DBABjw~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN', 'IAB documentation (a TC string in the tcfcav1 slot)'],
  ['DBABM.xyz~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA', 'header with a second part'],
  ['DBA!M~1YNN', 'header not base64'], ['XYZ', 'neither GPP nor TC'], ['1YNN', 'a bare US Privacy string'],
  ['BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA', 'a TCF v1 string as GPP'],
  [`${gppHeader(6)}~1YN`, 'uspv1 of 3'], [`${gppHeader(6)}~1YNNN`, 'uspv1 of 5'], [`${gppHeader(6)}~aYNN`, 'uspv1 version a'],
  [`${gppHeader(6)}~ YNN`, 'uspv1 version space'], [`${gppHeader(6)}~1XYZ`, 'uspv1 letters outside Y/N/-'],
  [`${gppHeader(6)}~1YNN.extra`, 'uspv1 with a second part'], [`${gppHeader(6)}~1éNN`, 'uspv1 non-ASCII'],
  [`${gppHeader(6)}~1😀N`, 'uspv1 with a surrogate pair'], [`${gppHeader(6)}~😀😀`, 'uspv1 of two emoji'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2)}`, 'usnat v2 by hand'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2.map(() => 3))}`, 'usnat all values 3'],
  [`${gppHeader(7)}~${usBits(1, USNAT_V2.slice(0, 27))}`, 'usnat v1 layout, 60 bits padded to 66'],
  [`${gppHeader(7)}~${usBits(1, USNAT_V2.slice(0, 27), 6)}`, 'usnat v1 layout, 60 bits unpadded'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2.slice(0, 27))}`, 'usnat version 2 in the v1 layout'],
  [`${gppHeader(7)}~${usBits(1, USNAT_V2)}`, 'usnat version 1 in the v2 layout'],
  [`${gppHeader(7)}~${usBits(9, USNAT_V2)}`, 'usnat version 9'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2.slice(0, 20))}`, 'usnat cut short'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2)}.${gpcBits(1, true)}`, 'usnat with GPC'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2)}.${gpcBits(3, true)}`, 'usnat GPC sub-section type 3'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2)}.`, 'usnat empty GPC sub-section'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2)}.${gpcBits(1, true)}.junk!`, 'usnat third sub-section'],
  [`${gppHeader(7)}~${usBits(2, USNAT_V2)}.gp+c`, 'usnat GPC not base64'],
  [`${gppHeader(7)}~.${gpcBits(1, true)}`, 'usnat empty core'],
  [`${gppHeader(8)}~${usBits(1, Array(18).fill(3))}.${gpcBits(1, false)}`, 'usca values 3'],
  [`${gppHeader(8)}~${usBits(1, Array(17).fill(1))}`, 'usca cut short'],
  [`${gppHeader(9)}~${usBits(1, Array(17).fill(1))}.${gpcBits(1, true)}`, 'usva with a second part (ignored)'],
  [`${gppHeader(9)}~${usBits(1, Array(14).fill(1), 6)}`, 'usva cut short'],
  [`${gppHeader(9)}~${usBits(1, Array(16).fill(1))}`, 'usva one value short, made up by padding'],
  [`${gppHeader(10)}~${usBits(1, Array(16).fill(2))}.${gpcBits(1, true)}`, 'usco with GPC'],
  [`${gppHeader(10)}~${usBits(1, Array(13).fill(2), 6)}`, 'usco cut short'],
  [`${gppHeader(10)}~${usBits(1, Array(15).fill(2))}`, 'usco one value short, made up by padding'],
  [`${gppHeader(1, 7)}~anything at all~${usBits(2, USNAT_V2)}`, 'unknown id 1 (ignored)'],
  [`${gppHeader(3, 4)}~x~y`, 'ids 3 and 4 (not sections)'], [`${gppHeader(40)}~!!`, 'unknown id 40'],
  [`${gppHeader(11)}~!!`, 'malformed usut (unsupported)'], [`${gppHeader(5, 6)}~junk~1YNN`, 'malformed tcfcav1 (unsupported)'],
  [`${gppHeader(2, 6)}~${handCore({ cmpId: 1 })}~1YNN`, 'tcfeuv2 with CMP id 1'],
  [`${gppHeader(2)}~${handCore({ country: [63, 63] })}`, 'tcfeuv2 with country code 63'],
  [`${gppHeader(2)}~${handCore({ version: 1 })}`, 'tcfeuv2 holding a v1 string'],
  [`${gppHeader(2)}~${handCore({ version: 1, vendors: { bits: [1, 9, 77], max: 400 } })}`, 'tcfeuv2 holding a long v1 string'],
  [`${gppHeader(2)}~${handCore({ version: 5 })}`, 'tcfeuv2 version 5'],
  [`${gppHeader(2)}~${handCore({ restrictions: null })}`, 'tcfeuv2 without restrictions'],
  [`${gppHeader(2)}~${handCore({ vendors: { ranges: [[9, 3]], max: 9 } })}`, 'tcfeuv2 reversed range'],
  [`${gppHeader(2)}~${handCore({ restrictions: [{ purpose: 3, type: 0, ranges: [[0, 0]] }] })}`, 'tcfeuv2 vendor 0 restriction'],
  [`${gppHeader(2)}~${handCore({ restrictions: [{ purpose: 0, type: 1, ranges: [[3, 3]] }] })}`, 'tcfeuv2 restriction of purpose 0'],
  [`${gppHeader(2)}~${handCore()}..${handSegment(1)}`, 'tcfeuv2 empty segment'],
  [`${gppHeader(2)}~${handSegment(1)}`, 'tcfeuv2 without a core'],
  [`${gppHeader(2)}~${handCore()}.${handCore()}`, 'tcfeuv2 core twice'],
  [`${gppHeader(2)}~${handCore()}.${handSegment(5)}`, 'tcfeuv2 segment type 5'],
  [`${gppHeader(2)}~${handSegment(3, { n: 3 })}.${handCore()}`, 'tcfeuv2 core last'],
  [`${gppHeader(2, 7)}~${handCore()}`, 'two listed, one present'],
  [`${gppHeader(6)}~1YNN~1YNN`, 'one listed, two present'],
  [fibHeader([[6], [1]]), 'header ids 6, 7 with no sections'],
  [`${fibHeader([[6], [1]])}~1YNN~${usBits(2, USNAT_V2)}`, 'header ids 6, 7 by hand'],
  [`${fibHeader([[6, 1]])}~1YNN~${usBits(2, USNAT_V2)}`, 'header group 6..7 by hand'],
  [`${fibHeader([[6, 4000]])}~1YNN`, 'header group of 4001 ids'],
  [`${fibHeader([[2 ** 40]])}~x`, 'header id 2^40 (unknown)'],
  [`${fibHeader([[7], [1]])}~${usBits(2, USNAT_V2)}~${usBits(1, Array(18).fill(2))}`, 'usnat and usca by hand'],
];
for (const [text, kind] of HAND_GPP) addGpp(text, `hand-made: ${kind}`);
for (const text of validGpp.slice(0, 30)) {
  for (let n = 1; n < text.length; n += int(1, 4)) addGpp(text.slice(0, n), 'cut short');
}
const GPP_CHARS = `${DICT}.~ +é`;
// How many ids the header's Fibonacci range names (@iabgpp/cmpapi lists every one).
function headerSpan(text) {
  const bits = toBits(text.split('~')[0].split('.')[0]);
  if (!text.startsWith('DB') || bits === null) return 0;
  let at = 24;
  const fib = () => {
    let value = 0;
    for (let a = 1, b = 2, previous = false; at < bits.length; [a, b] = [b, a + b]) {
      const bit = bits[at++] === '1';
      if (bit && previous) return value;
      if (bit) value += a;
      previous = bit;
    }
    return value;
  };
  let span = 0;
  for (let n = parseInt(bits.slice(12, 24) || '0', 2); n > 0 && at < bits.length; n--) {
    const group = bits[at++] === '1';
    fib();
    span += group ? fib() + 1 : 1;
  }
  return span;
}
const gppSpan = (text) => headerSpan(text) + text.split('~').reduce((sum, part) => sum + walkTcf(part).span, 0);
for (let i = 0; i < 1000; i++) {
  let text;
  do {
    const chars = [...pick(validGpp)];
    for (let k = int(1, 3); k > 0; k--) {
      const at = int(0, chars.length - 1);
      if (bool(0.7)) chars[at] = pick([...GPP_CHARS]); else chars.splice(at, 1);
    }
    text = chars.join('');
  } while (gppSpan(text) > MAX_SPAN);
  addGpp(text, 'mutated');
}

// ---------------------------------------------------------------------------------------------
// Run the core's decoder on both corpora and compare.

if (!existsSync(BIN)) {
  console.error(`${BIN} is missing: run \`cargo build --release -p consentry-core --example decode\``);
  process.exit(2);
}
function runCore(kind, items) {
  for (const { text } of items) if (text.includes('\n')) throw new Error(`a corpus string holds a newline: ${JSON.stringify(text)}`);
  const input = items.map((i) => i.text).join('\n') + '\n';
  const run = spawnSync(BIN, [kind], { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`decode ${kind} exited with ${run.status}: ${run.stderr}`);
  const lines = run.stdout.split('\n');
  if (lines.pop() !== '' || lines.length !== items.length) {
    throw new Error(`decode ${kind}: ${lines.length} lines for ${items.length} inputs`);
  }
  return lines.map((l) => JSON.parse(l));
}

const mismatches = [];
const summary = { tcf: {}, gpp: {} };
const count = (table, key) => { table[key] = (table[key] ?? 0) + 1; };
const divergenceSeen = new Map();
function tally(table, kind, expected) {
  const row = (table[kind] ??= { strings: 0, decoded: 0, refused: 0, divergent: 0 });
  row.strings++;
  if (expected.divergence?.length) row.divergent++;
  else if (expected.reject) row.refused++;
  else row.decoded++;
}

function check(kind, item, expected, actual, diff) {
  const label = `${kind} [${item.kind}] ${JSON.stringify(item.text).slice(0, 160)}`;
  const coreRejects = typeof actual.error === 'string';
  if (coreRejects && actual.error.length === 0) {
    mismatches.push(`${label}: empty error text`);
  } else if (expected.reject) {
    if (!coreRejects) {
      mismatches.push(`${label}: ${expected.divergence ? `documented divergence (${expected.divergence.join(', ')})` : expected.why} but the core decoded it`);
    }
  } else if (coreRejects) {
    mismatches.push(`${label}: the reference decodes it, the core says "${actual.error}"`);
  } else {
    const diffs = diff(expected.fields, actual);
    if (diffs.length) mismatches.push(`${label}:\n      ${diffs.slice(0, 8).join('\n      ')}`);
  }
  for (const d of expected.divergence ?? []) {
    const key = `${kind}: ${d}`;
    divergenceSeen.set(key, (divergenceSeen.get(key) ?? 0) + 1);
  }
  if (VERBOSE) console.log(label, expected.reject ? 'rejected' : 'decoded', actual.error ?? '');
}

const timings = { generate: Date.now() - started };
let phase = Date.now();
const tcfCoverage = {};
const tcfOut = runCore('tcf', tcf);
tcf.forEach((item, i) => {
  const expected = expectTcf(item.text, (what) => count(tcfCoverage, what));
  check('tcf', item, expected, tcfOut[i], diffFields);
  tally(summary.tcf, item.kind, expected);
  if (!expected.reject) {
    count(tcfCoverage, `layout ${expected.fields.segments.join('.')}`);
    if (expected.fields.version === 1) count(tcfCoverage, 'version 1');
    if (expected.fields.publisherRestrictions?.length) count(tcfCoverage, 'with publisher restrictions');
    if (expected.fields.numCustomPurposes > 0) count(tcfCoverage, 'with custom purposes');
  }
});

timings.tcf = Date.now() - phase;
phase = Date.now();
const gppCoverage = {};
const gppOut = runCore('gpp', gpp);
gpp.forEach((item, i) => {
  const expected = expectGpp(item.text);
  check('gpp', item, expected, gppOut[i], diffGpp);
  tally(summary.gpp, item.kind, expected);
  if (!expected.reject) {
    const f = expected.fields;
    for (const name of f.sectionNames) count(gppCoverage, `section ${name}`);
    for (const [name, sec] of Object.entries(f.parsedSections)) {
      if (sec.GpcSegmentIncluded) count(gppCoverage, `section ${name} with its GPC sub-section`);
    }
    for (const id of f.unsupportedSections) count(gppCoverage, `unsupported section ${SECTION_NAMES.get(id) ?? id}`);
    if (f.sectionList.length + f.unsupportedSections.length > 1) count(gppCoverage, 'multi-section strings');
    if (f.headerSectionIds === null) count(gppCoverage, f.sectionList.length ? 'bare TC string' : 'empty string');
  }
});

timings.gpp = Date.now() - phase;

// Every documented divergence must have been met (and so was checked) at least once.
const DOCUMENTED = [
  'tcf: no core segment', 'tcf: a segment kind twice', 'tcf: segments in a v1 string',
  'tcf: reversed vendor range', 'tcf: vendor 0 in a restriction', 'gpp: unsupported section not validated',
  'gpp: uspv1 outside the BMP',
];
for (const d of DOCUMENTED) {
  if (!divergenceSeen.has(d)) mismatches.push(`documented divergence "${d}" was not produced by the corpus`);
}
if (![...divergenceSeen.keys()].some((k) => k.startsWith('gpp: tcfeuv2 by the TCF rules'))) {
  mismatches.push('documented divergence "gpp: tcfeuv2 by the TCF rules" was not produced by the corpus');
}

const table = (rows) => {
  for (const [k, v] of Object.entries(rows).sort()) {
    console.log(`  ${String(typeof v === 'object' ? v.strings : v).padStart(6)}  ${k}${typeof v === 'object' ? `  (decoded by both ${v.decoded}, refused by both ${v.refused}, documented divergence ${v.divergent})` : ''}`);
  }
};
console.log(`IAB conformance, seed ${SEED}: @iabtechlabtcf/core and @iabgpp/cmpapi against ${path.relative(ROOT, BIN)}`);
console.log(`\nTCF: ${tcf.length} strings`);
table(summary.tcf);
console.log('  coverage (decoded strings):');
table(tcfCoverage);
console.log(`\nGPP: ${gpp.length} strings`);
table(summary.gpp);
console.log('  coverage (decoded strings):');
table(gppCoverage);
console.log('\nDocumented divergences met (the core refuses, the reference decodes):');
table(Object.fromEntries(divergenceSeen));
console.log(`\n${mismatches.length} mismatches, ${((Date.now() - started) / 1000).toFixed(1)} s (generating ${timings.generate} ms, TCF ${timings.tcf} ms, GPP ${timings.gpp} ms)`);
for (const m of mismatches.slice(0, 40)) console.log(`  MISMATCH ${m}`);
if (mismatches.length > 40) console.log(`  ... and ${mismatches.length - 40} more`);
process.exit(mismatches.length ? 1 : 0);
