#!/usr/bin/env node
// Hold examples/node/verify.js to the shared test vectors (testvectors/vectors.json).
//
// Every vector is checked in process through verify(); a sample of them (one per expected outcome,
// plus the raw-secret, rotation and largest-body cases), or all of them with --cli-all, is checked
// again through the command line, along with its exit codes for usage errors. Vectors whose options
// turn on a legacy mode (allowBodySignature, allowSecretDigest) are skipped: verify.js implements
// scheme v1 only. Expired keys are left out of the keyring, as verify() expects only active keys.
//
// Usage: node run_vectors.js [--cli-all] [vectors.json]
// Exits 1 on any disagreement, naming the tcId and comment; the last line on stdout is
// "node: N passed, F failed, S skipped".
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const v = require('./verify.js');

// The VerificationError reason of verify.js for each Go sentinel name.
const SENTINELS = {
  'missing signature header': 'ErrMissingSignature',
  'malformed signature header': 'ErrMalformedHeader',
  'timestamp too old': 'ErrTimestampTooOld',
  'timestamp too new': 'ErrTimestampTooNew',
  'no matching signature': 'ErrNoMatchingSignature',
  'invalid secret': 'ErrInvalidSecret',
};
const FIELDS = ['bodyBase64', 'comment', 'error', 'flags', 'headers', 'keyLabel', 'keys', 'now', 'options', 'result', 'tcId'];
const CLI = path.join(__dirname, 'verify.js');

function load(file) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (doc.scheme !== 'staircase-webhook-signature' || doc.version !== 1) throw new Error(`${file}: unexpected scheme or version`);
  if (doc.numberOfTests !== (doc.tests || []).length) throw new Error(`${file}: numberOfTests disagrees with the list`);
  return doc.tests;
}

// expected returns the outcome as ['valid', label] or ['invalid', sentinel]; it rejects unknown values.
function expected(t) {
  if (Object.keys(t).sort().join() !== FIELDS.join()) throw new Error(`fields ${Object.keys(t).sort()}, want ${FIELDS}`);
  for (const k of t.keys) {
    const f = Object.keys(k).sort().join();
    if (f !== 'expires,label,secret' && f !== 'expires,label,rawBase64') throw new Error(`key fields ${f}: want label, expires and one of secret, rawBase64`);
  }
  if (t.result === 'valid' && t.error === '') return ['valid', t.keyLabel];
  if (t.result === 'invalid' && Object.values(SENTINELS).includes(t.error)) return ['invalid', t.error];
  throw new Error(`unknown result ${JSON.stringify(t.result)} / error ${JSON.stringify(t.error)}`);
}

// strictB64 decodes canonical padded standard base64, throwing on anything else.
function strictB64(text) {
  const raw = Buffer.from(text, 'base64');
  if (raw.toString('base64') !== text) throw new Error('not canonical standard base64');
  return raw;
}

// keyring returns every key as {label, secret} (a string, or a Buffer for raw bytes) and the
// indexes of the active ones.
function keyring(t) {
  const keys = t.keys.map((k, i) => ({
    label: k.label || `key${i + 1}`,
    secret: 'rawBase64' in k ? strictB64(k.rawBase64) : k.secret,
  }));
  const active = t.keys.flatMap((k, i) => (k.expires === 0 || t.now < k.expires ? [i] : []));
  return { keys, active };
}

function runFunction(t) {
  const { keys, active } = keyring(t);
  try {
    keys.forEach((k) => v.parseSecret(k.secret)); // like NewVerifier, reject a bad secret even if expired
    const i = v.verify(active.map((j) => keys[j].secret), t.headers, strictB64(t.bodyBase64), t.now, t.options.toleranceSeconds);
    return ['valid', keys[active[i]].label];
  } catch (e) {
    if (!(e instanceof v.VerificationError)) throw e;
    return ['invalid', SENTINELS[e.reason]];
  }
}

// cliOK reports whether the command line can express a vector: its headers survive
// -H 'name: value' unchanged, and no expired key holds an unusable secret (only active keys are passed).
function cliOK(t) {
  const { keys, active } = keyring(t);
  try {
    keys.forEach((k, i) => active.includes(i) || v.parseSecret(k.secret));
  } catch (e) {
    if (!(e instanceof v.VerificationError)) throw e;
    return false;
  }
  return Object.entries(t.headers).every(([name, val]) =>
    val === val.replace(/^[ \t]+|[ \t]+$/g, '') && !/[\r\n\0]/.test(val) && !name.includes(':'));
}

function runCLI(t) {
  const { keys, active } = keyring(t);
  const args = [CLI, '--now', String(t.now), '--tolerance', String(t.options.toleranceSeconds)];
  for (const j of active) {
    const s = keys[j].secret;
    args.push(...(Buffer.isBuffer(s) ? ['--secret-raw-base64', s.toString('base64')] : ['--secret', s]));
  }
  for (const [name, val] of Object.entries(t.headers)) args.push('-H', `${name}: ${val}`);
  // The CLI needs one secret; a key that matches nothing stands for "no active key".
  if (!active.length) args.push('--secret-raw-base64', Buffer.alloc(32).toString('base64'));
  const p = spawnSync(process.execPath, args, { input: strictB64(t.bodyBase64), timeout: 60000, maxBuffer: 1 << 20 });
  const out = String(p.stdout), err = String(p.stderr);
  if (p.status === 0 && out.startsWith('valid: signed with secret ')) {
    const n = Number(out.trim().split(' ').pop()) - 1;
    return ['valid', n < active.length ? keys[active[n]].label : '(placeholder key)'];
  }
  if ((p.status === 1 || p.status === 2) && err.startsWith('invalid: ')) {
    const reason = err.slice('invalid: '.length).split(':')[0].trim();
    if (reason in SENTINELS && (p.status === 2) === (reason === 'invalid secret')) return ['invalid', SENTINELS[reason]];
  }
  return [`exit ${p.status}`, (out + err).trim().slice(0, 200)];
}

// cliSample picks one vector per expected outcome, plus raw-secret, several-key, expiry,
// Standard Webhooks and largest-body vectors.
function cliSample(tests) {
  const usable = tests.filter(cliOK);
  const picked = new Map();
  const seen = new Set();
  for (const t of usable) {
    const k = `${t.result}/${t.error}`;
    if (!seen.has(k)) { seen.add(k); picked.set(t.tcId, t); }
  }
  const wants = [
    (t) => t.keys.some((k) => 'rawBase64' in k),
    (t) => t.keys.length > 1,
    (t) => t.keys.some((k) => k.expires) && t.result === 'valid',
    (t) => Object.keys(t.headers).some((n) => n.toLowerCase() === 'webhook-signature'),
  ];
  for (const want of wants) {
    const t = usable.find(want);
    if (t) picked.set(t.tcId, t);
  }
  const largest = usable.reduce((a, b) => (b.bodyBase64.length > a.bodyBase64.length ? b : a));
  picked.set(largest.tcId, largest);
  return [...picked.values()];
}

// usageErrors lists command lines that must exit 2 without echoing a secret.
function usageErrors() {
  const s = 'whsec_' + Buffer.alloc(32, 'k').toString('base64');
  return [
    ['no --secret', ['-H', 'x-staircase-signature: v1,x']],
    ['an -H without a colon', ['--secret', s, '-H', 'x-staircase-id']],
    ['a --now that is not a number', ['--secret', s, '--now', 'soon']],
    ['an unknown option', ['--secret', s, '--bogus']],
    ['a secret that is not base64', ['--secret', 'whsec_not base64!']],
    ['a secret shorter than 16 bytes', ['--secret', 'whsec_' + Buffer.alloc(15, 'k').toString('base64')]],
    ['a stray argument', ['--secret', s, 'whsec_' + Buffer.from('stray'.repeat(4)).toString('base64')]],
  ];
}

function main() {
  const argv = process.argv.slice(2);
  const cliAll = argv.includes('--cli-all');
  const file = argv.find((a) => a !== '--cli-all') || path.join(__dirname, '..', '..', 'testvectors', 'vectors.json');
  const tests = load(file);
  let passed = 0, failed = 0, skipped = 0;
  const fail = (what, t, want, got) => {
    failed++;
    console.error(`FAIL ${what} tcId ${t.tcId} (${t.comment}): want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  };
  const runnable = [];
  for (const t of tests) {
    let want;
    try {
      want = expected(t);
    } catch (e) {
      failed++;
      console.error(`FAIL node tcId ${t.tcId}: ${e.message}`);
      continue;
    }
    if (t.options.allowBodySignature || t.options.allowSecretDigest) { skipped++; continue; }
    runnable.push(t);
    const got = runFunction(t);
    if (got[0] === want[0] && got[1] === want[1]) passed++; else fail('node', t, want, got);
  }
  const start = process.hrtime.bigint();
  const cli = cliAll ? runnable.filter(cliOK) : cliSample(runnable);
  if (cliAll) skipped += runnable.length - cli.length;
  for (const t of cli) {
    const want = expected(t), got = runCLI(t);
    if (got[0] === want[0] && got[1] === want[1]) passed++; else fail('node-cli', t, want, got);
  }
  for (const [what, args] of usageErrors()) {
    const p = spawnSync(process.execPath, [CLI, ...args], { input: '', timeout: 60000 });
    const echoed = args.filter((x) => x.startsWith('whsec_') && (String(p.stdout) + String(p.stderr)).includes(x));
    if (p.status === 2 && !echoed.length) passed++;
    else { failed++; console.error(`FAIL node-cli usage: ${what}: exit ${p.status} (want 2), ${echoed.length} secrets echoed (want none)`); }
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.error(`node: ${runnable.length} vectors in process, ${cli.length} through the CLI + ${usageErrors().length} usage errors in ${secs.toFixed(1)} s`);
  console.log(`node: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  return failed ? 1 : 0;
}

process.exitCode = main();
