#!/usr/bin/env node
// Verify a Staircase webhook signature (scheme v1 of SPEC.md) with the Node.js standard library only.
// Copy verify() into a receiver; give it the raw body bytes as received. The Go verifier's legacy modes
// (AllowBodySignature, AllowSecretDigest) are left out on purpose: a legacy header is malformed here.
// CLI: verify.js --secret S [-H 'name: value']... [--now UNIX] [--tolerance SECONDS] < body; exit 0
// when valid, 1 when invalid (the reason on stderr), 2 on a usage error or an unusable secret.
'use strict';
const crypto = require('node:crypto'), MALFORMED = 'malformed signature header';

class VerificationError extends Error { // reason is the Go sentinel's text, e.g. 'timestamp too old'
  constructor(reason, hint) { super(hint ? `${reason}: ${hint}` : reason); this.reason = reason; }
}
function check(ok, reason, hint) { if (!ok) throw new VerificationError(reason, hint); }
function b64(text, size) { // canonical padded standard base64 (of size bytes), else null
  const ok = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text);
  const raw = ok ? Buffer.from(text, 'base64') : null; // Buffer.from alone is lenient: check the round trip
  return raw && raw.toString('base64') === text && (size === undefined || raw.length === size) ? raw : null;
}

function parseSecret(secret) { // the HMAC key of a whsec_ secret (string) or of raw key bytes (Buffer)
  const text = typeof secret === 'string' && secret.length <= 1024 ? secret.trim() : '';
  const key = Buffer.isBuffer(secret) ? secret : b64(text.startsWith('whsec_') ? text.slice(6) : text);
  check(key && key.length >= 16, 'invalid secret');
  return key;
}
// get returns the values of a header, its name matched case-insensitively (none when absent).
const get = (h, name) => Object.keys(h).filter((k) => k.toLowerCase() === name).flatMap((k) => h[k]).map(String);
// verify returns the index of the secret that signed the request, else throws VerificationError.
// secrets: one secret or an array of the active ones; headers: an object name -> value or array, such
// as req.headers; body: a Buffer; now: Unix seconds (default the clock); tolerance: seconds, 0 = 300.
function verify(secrets, headers, body, now, tolerance = 300) {
  const keys = [].concat(secrets).map(parseSecret);
  const fam = get(headers, 'x-staircase-signature').length ? 'x-staircase-' : 'webhook-';
  const values = get(headers, fam + 'signature'); // one family per request, never mixed
  const entries = values.flatMap((v) => v.split(/[ \t]+/)).filter(Boolean);
  check(entries.length, 'missing signature header');
  check(Buffer.byteLength(values.join(' ')) <= 4096 && entries.length <= 16, MALFORMED, 'too long');
  const v1 = entries.filter((e) => e.startsWith('v1,')).map((e) => e.slice(3));
  check(v1.length || entries.every((e) => e.indexOf(',') < 1), 'no matching signature', 'no v1 entry');
  check(v1.length, MALFORMED, 'no versioned entry (legacy modes are not supported here)');
  const ids = get(headers, fam + 'id'), tss = get(headers, fam + 'timestamp');
  check(ids.length === 1 && /^[\x21-\x7e]{1,256}$/.test(ids[0]), MALFORMED, 'bad id');
  check(tss.length === 1 && /^[0-9]{1,12}$/.test(tss[0]), MALFORMED, 'bad timestamp');
  const age = (now ?? Date.now() / 1000) - Number(tss[0]), tol = tolerance || 300;
  check(age <= tol, 'timestamp too old', `signed ${Math.trunc(age)} s ago`);
  check(-age <= tol, 'timestamp too new', `signed ${Math.trunc(-age)} s in the future`);
  const sigs = v1.map((s) => b64(s, 32));
  check(!sigs.includes(null), MALFORMED, 'a v1 entry is not standard base64 of 32 bytes');
  for (const [i, key] of keys.entries()) {
    const mac = crypto.createHmac('sha256', key).update(`${ids[0]}.${tss[0]}.`).update(body).digest();
    if (sigs.map((sig) => crypto.timingSafeEqual(mac, sig)).includes(true)) return i;
  }
  throw new VerificationError('no matching signature', 'wrong secret, or the body was changed');
}
module.exports = { verify, parseSecret, VerificationError };

if (require.main === module) {
  const usage = (msg) => { console.error(`verify.js: ${msg}\nusage: verify.js --secret S [--secret-raw-base64 \
B64]... [-H 'name: value']... [--now UNIX] [--tolerance SECONDS] < body`); process.exit(2); };
  try {
    const str = { type: 'string' }, many = { type: 'string', multiple: true };
    const a = require('node:util').parseArgs({ tokens: true, options: { secret: many,
      'secret-raw-base64': many, header: { ...many, short: 'H' }, now: str, tolerance: str } });
    const secrets = a.tokens.filter((t) => t.kind === 'option' && t.name.startsWith('secret')) // in order
      .map((t) => (t.name === 'secret' ? t.value : b64(t.value) || Buffer.alloc(0)));
    const [now, tolerance] = [a.values.now, a.values.tolerance ?? '300'].map((s) => (s === undefined ? s
      : /^[0-9]{1,12}$/.test(s) ? Number(s) : usage('--now and --tolerance take decimal seconds')));
    const headers = {}, hs = (a.values.header || []).map((h) => /^([^:\s]+):[ \t]*(.*?)[ \t]*$/s.exec(h));
    if (!secrets.length || hs.includes(null)) usage("need --secret and -H 'name: value'"); // no value echoed
    hs.forEach((m) => (headers[m[1].toLowerCase()] ||= []).push(m[2]));
    const i = verify(secrets, headers, require('node:fs').readFileSync(0), now, tolerance);
    console.log('valid: signed with secret', i + 1);
  } catch (e) {
    if (String(e.code).startsWith('ERR_PARSE_ARGS')) usage('unknown option or stray argument'); // echo no value
    if (!(e instanceof VerificationError)) throw e;
    console.error(`invalid: ${e.message}`);
    process.exit(e.reason === 'invalid secret' ? 2 : 1);
  }
}
