#!/usr/bin/env python3
"""Hold examples/python/verify.py to the shared test vectors (testvectors/vectors.json).

Every vector is checked in process through verify(); a sample of them (one per expected outcome,
plus the raw-secret, rotation and largest-body cases), or all of them with --cli-all, is checked
again through the command line, along with its exit codes for usage errors. Vectors whose options
turn on a legacy mode (allowBodySignature, allowSecretDigest) are skipped: verify.py implements
scheme v1 only. Expired keys are left out of the keyring, as verify() expects only active keys.

Exits 1 on any disagreement, naming the tcId and comment; the last line is
"python: N passed, F failed, S skipped".
"""
import argparse, base64, json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import verify as v  # noqa: E402

# The VerificationError reason of verify.py for each Go sentinel name.
SENTINELS = {
    "missing signature header": "ErrMissingSignature",
    "malformed signature header": "ErrMalformedHeader",
    "timestamp too old": "ErrTimestampTooOld",
    "timestamp too new": "ErrTimestampTooNew",
    "no matching signature": "ErrNoMatchingSignature",
    "invalid secret": "ErrInvalidSecret",
}
FIELDS = {"tcId", "comment", "flags", "keys", "options", "now", "headers", "bodyBase64", "result", "error", "keyLabel"}


def load(path):
    with open(path, "rb") as f:
        doc = json.load(f)
    if doc.get("scheme") != "staircase-webhook-signature" or doc.get("version") != 1:
        raise SystemExit(f"{path}: unexpected scheme or version")
    if doc.get("numberOfTests") != len(doc.get("tests", [])):
        raise SystemExit(f"{path}: numberOfTests disagrees with the list")
    return doc["tests"]


def expected(t):
    """The expected outcome as ("valid", label) or ("invalid", sentinel); rejects unknown values."""
    if set(t) != FIELDS:
        raise ValueError(f"unknown or missing fields {sorted(set(t) ^ FIELDS)}")
    for k in t["keys"]:
        if set(k) not in ({"label", "secret", "expires"}, {"label", "rawBase64", "expires"}):
            raise ValueError(f"key fields {sorted(k)}: want label, expires and one of secret, rawBase64")
    if t["result"] == "valid" and t["error"] == "":
        return ("valid", t["keyLabel"])
    if t["result"] == "invalid" and t["error"] in SENTINELS.values():
        return ("invalid", t["error"])
    raise ValueError(f"unknown result {t['result']!r} / error {t['error']!r}")


def keyring(t):
    """All keys as (label, secret) with secret a str or raw bytes, and the indexes of the active ones."""
    keys, active = [], []
    for i, k in enumerate(t["keys"]):
        secret = base64.b64decode(k["rawBase64"], validate=True) if "rawBase64" in k else k["secret"]
        keys.append((k["label"] or f"key{i + 1}", secret))
        if k["expires"] == 0 or t["now"] < k["expires"]:
            active.append(i)
    return keys, active


def run_function(t):
    keys, active = keyring(t)
    body = base64.b64decode(t["bodyBase64"], validate=True)
    try:
        for _, secret in keys:  # like NewVerifier, reject a bad secret even in an expired key
            v.parse_secret(secret)
        i = v.verify([keys[j][1] for j in active], t["headers"], body, t["now"], t["options"]["toleranceSeconds"])
        return ("valid", keys[active[i]][0])
    except v.VerificationError as e:
        return ("invalid", SENTINELS[e.reason])


def cli_ok(t):
    """Whether the command line can express a vector: its headers survive -H 'name: value'
    unchanged, and no expired key holds an unusable secret (only active keys are passed)."""
    keys, active = keyring(t)
    try:
        for i, (_, secret) in enumerate(keys):
            if i not in active:
                v.parse_secret(secret)
    except v.VerificationError:
        return False
    return all(val == val.strip(" \t") and not any(c in val for c in "\r\n\0") and ":" not in name
               for name, val in t["headers"].items())


def run_cli(t):
    keys, active = keyring(t)
    args = [sys.executable, os.path.join(HERE, "verify.py"), "--now", str(t["now"]),
            "--tolerance", str(t["options"]["toleranceSeconds"])]
    for j in active:
        secret = keys[j][1]
        if isinstance(secret, bytes):
            args += ["--secret-raw-base64", base64.b64encode(secret).decode()]
        else:
            args += ["--secret", secret]
    for name, val in t["headers"].items():
        args += ["-H", f"{name}: {val}"]
    if not active:  # the CLI needs one secret; a key that matches nothing stands for "no active key"
        args += ["--secret-raw-base64", base64.b64encode(b"\0" * 32).decode()]
    p = subprocess.run(args, input=base64.b64decode(t["bodyBase64"]), capture_output=True, timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    if p.returncode == 0 and out.startswith("valid: signed with secret "):
        n = int(out.split()[-1]) - 1
        return ("valid", keys[active[n]][0] if n < len(active) else "(placeholder key)")
    if p.returncode in (1, 2) and err.startswith("invalid: "):
        reason = err[len("invalid: "):].split(":")[0].strip()
        if reason in SENTINELS and (p.returncode == 2) == (reason == "invalid secret"):
            return ("invalid", SENTINELS[reason])
    return ("exit %d" % p.returncode, (out + err).strip()[:200])


def cli_sample(tests):
    """One vector per expected outcome, plus raw-secret, several-key and largest-body vectors."""
    picked, seen = [], set()
    usable = [t for t in tests if cli_ok(t)]
    for t in usable:
        if (t["result"], t["error"]) not in seen:
            seen.add((t["result"], t["error"]))
            picked.append(t)
    for want in (lambda t: any("rawBase64" in k for k in t["keys"]), lambda t: len(t["keys"]) > 1,
                 lambda t: any(k["expires"] for k in t["keys"]) and t["result"] == "valid",
                 lambda t: "webhook-signature" in {n.lower() for n in t["headers"]}):
        picked += [t for t in usable if want(t)][:1]
    picked.append(max(usable, key=lambda t: len(t["bodyBase64"])))
    return list({t["tcId"]: t for t in picked}.values())


def usage_errors():
    """Command lines that must exit 2 without echoing a secret, as (description, arguments)."""
    s = "whsec_" + base64.b64encode(b"k" * 32).decode()
    return [("no --secret", ["-H", "x-staircase-signature: v1,x"]),
            ("an -H without a colon", ["--secret", s, "-H", "x-staircase-id"]),
            ("a --now that is not a number", ["--secret", s, "--now", "soon"]),
            ("an unknown option", ["--secret", s, "--bogus"]),
            ("a secret that is not base64", ["--secret", "whsec_not base64!"]),
            ("a secret shorter than 16 bytes", ["--secret", "whsec_" + base64.b64encode(b"k" * 15).decode()]),
            ("a stray argument", ["--secret", s, "whsec_" + base64.b64encode(b"stray" * 4).decode()])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vectors", nargs="?", default=os.path.join(HERE, "..", "..", "testvectors", "vectors.json"))
    ap.add_argument("--cli-all", action="store_true", help="run the command line on every vector")
    a = ap.parse_args()
    tests = load(a.vectors)
    passed = failed = skipped = 0
    runnable = []
    for t in tests:
        try:
            want = expected(t)
        except ValueError as e:
            print(f"FAIL python tcId {t.get('tcId')}: {e}", file=sys.stderr)
            failed += 1
            continue
        if t["options"]["allowBodySignature"] or t["options"]["allowSecretDigest"]:
            skipped += 1
            continue
        runnable.append(t)
        got = run_function(t)
        if got == want:
            passed += 1
        else:
            failed += 1
            print(f"FAIL python tcId {t['tcId']} ({t['comment']}): want {want}, got {got}", file=sys.stderr)
    start = time.monotonic()
    cli = [t for t in runnable if cli_ok(t)] if a.cli_all else cli_sample(runnable)
    skipped += len(runnable) - len(cli) if a.cli_all else 0
    for t in cli:
        want, got = expected(t), run_cli(t)
        if got == want:
            passed += 1
        else:
            failed += 1
            print(f"FAIL python-cli tcId {t['tcId']} ({t['comment']}): want {want}, got {got}", file=sys.stderr)
    for what, args in usage_errors():
        p = subprocess.run([sys.executable, os.path.join(HERE, "verify.py")] + args, input=b"",
                           capture_output=True, timeout=60)
        echoed = [x for x in args if x.startswith("whsec_") and x.encode() in p.stdout + p.stderr]
        if p.returncode == 2 and not echoed:
            passed += 1
        else:
            failed += 1
            print(f"FAIL python-cli usage: {what}: exit {p.returncode} (want 2), "
                  f"{len(echoed)} secrets echoed (want none)", file=sys.stderr)
    print(f"python: {len(runnable)} vectors in process, {len(cli)} through the CLI "
          f"+ {len(usage_errors())} usage errors in {time.monotonic() - start:.1f} s", file=sys.stderr)
    print(f"python: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
