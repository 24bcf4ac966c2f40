#!/usr/bin/env python3
"""Verify a Staircase webhook signature (scheme v1 of SPEC.md) with the standard library only.
Copy verify() into a receiver; give it the raw body bytes as received. The Go verifier's legacy
modes (AllowBodySignature, AllowSecretDigest) are left out on purpose: a legacy header is malformed.
CLI: verify.py --secret S [-H 'name: value']... [--now UNIX] [--tolerance SECONDS] < body; exit 0
when valid, 1 when invalid (the reason on stderr), 2 on a usage error or an unusable secret."""
import argparse, base64, hashlib, hmac, re, sys, time

MALFORMED = "malformed signature header"
class VerificationError(Exception):  # args: reason (the Go sentinel's text), hint
    reason = property(lambda self: self.args[0])
    __str__ = lambda self: ": ".join(a for a in self.args if a)

def _check(ok, reason, hint=""):
    if not ok:
        raise VerificationError(reason, hint)

def _b64(text, size=None):  # canonical padded standard base64 (of size bytes), else None
    if re.fullmatch(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", text):
        raw = base64.b64decode(text)
        return raw if base64.b64encode(raw).decode() == text and size in (None, len(raw)) else None

def parse_secret(secret):  # the HMAC key of a whsec_ secret (str) or of raw key bytes
    text = secret.strip() if isinstance(secret, str) and len(secret) <= 1024 else ""
    key = bytes(secret) if isinstance(secret, bytes) else _b64(text.removeprefix("whsec_"))
    _check(key is not None and len(key) >= 16, "invalid secret")
    return key

def _get(headers, name):  # a header's values, its name matched case-insensitively; None if absent
    values = [v for k, v in headers.items() if k.lower() == name]
    return [v for vs in values for v in ([vs] if isinstance(vs, str) else vs)] if values else None

def verify(secrets, headers, body, now=None, tolerance=300):
    """Return the index of the secret that signed the request, else raise VerificationError.
    secrets: one secret or a list of the active ones; headers: a mapping name -> value or list;
    body: bytes; now: Unix seconds, default the clock; tolerance: seconds each way, 0 means 300."""
    keys = [parse_secret(s) for s in (secrets if isinstance(secrets, list) else [secrets])]
    fam = "x-staircase-" if _get(headers, "x-staircase-signature") is not None else "webhook-"
    values = _get(headers, fam + "signature") or []  # one family per request, never mixed
    entries = [e for v in values for e in re.split(r"[ \t]+", v) if e]
    _check(entries, "missing signature header")
    size = len(" ".join(values).encode(errors="surrogateescape"))
    _check(size <= 4096 and len(entries) <= 16, MALFORMED, "over 4096 bytes or 16 entries")
    v1 = [e[3:] for e in entries if e.startswith("v1,")]
    _check(v1 or all(e.find(",") < 1 for e in entries), "no matching signature", "no v1 entry")
    _check(v1, MALFORMED, "no versioned entry (legacy modes are not supported here)")
    ids, tss = _get(headers, fam + "id") or [], _get(headers, fam + "timestamp") or []
    _check(len(ids) == 1 and re.fullmatch(r"[\x21-\x7e]{1,256}", ids[0]), MALFORMED, "bad id")
    _check(len(tss) == 1 and re.fullmatch(r"[0-9]{1,12}", tss[0]), MALFORMED, "bad timestamp")
    age, tolerance = (time.time() if now is None else now) - int(tss[0]), tolerance or 300
    _check(age <= tolerance, "timestamp too old", f"signed {int(age)} s ago")
    _check(-age <= tolerance, "timestamp too new", f"signed {int(-age)} s in the future")
    sigs = [_b64(s, 32) for s in v1]
    _check(None not in sigs, MALFORMED, "a v1 entry is not standard base64 of 32 bytes")
    for i, key in enumerate(keys):
        mac = hmac.new(key, f"{ids[0]}.{tss[0]}.".encode(), hashlib.sha256)
        mac.update(body)  # rather than copying the body
        if any([hmac.compare_digest(mac.digest(), sig) for sig in sigs]):
            return i
    raise VerificationError("no matching signature", "wrong secret, or the body was changed")

if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Verify a Staircase webhook whose body is on stdin.")
    p.add_argument("--secret", dest="secrets", action="append", help="whsec_ secret (repeatable)")
    p.add_argument("--secret-raw-base64", dest="secrets", action="append", type=lambda t: _b64(t) or b"")
    p.add_argument("-H", dest="headers", action="append", default=[], metavar="'NAME: VALUE'")
    p.add_argument("--now", type=int, help="Unix seconds (default: the clock)")
    p.add_argument("--tolerance", type=int, default=300, help="seconds each way (default 300)")
    (a, stray), headers = p.parse_known_args(), {}  # a.secrets: str or bytes, in command-line order
    if stray or not a.secrets or a.tolerance < 0 or not all(re.match(r"[^:\s]+:", h) for h in a.headers):
        p.error("need --secret, a tolerance >= 0, -H 'name: value' and nothing else")  # echo no value
    for name, _, value in (h.partition(":") for h in a.headers):
        headers.setdefault(name.lower(), []).append(value.strip(" \t"))
    try:
        i = verify(a.secrets, headers, sys.stdin.buffer.read(), a.now, a.tolerance)
        print("valid: signed with secret", i + 1)
    except VerificationError as e:
        print("invalid:", e, file=sys.stderr)
        sys.exit(2 if e.reason == "invalid secret" else 1)
