#!/usr/bin/env python3
"""A principal mapper in plain Python (standard library only), speaking the
idprop adapter protocol v1 over stdin/stdout (JSON Lines); it keeps no state,
so it says `reusable` (v1.2) and one process serves every scenario of a job.

It plays the Cloud Connector's principal-propagation step: validate the
user's JWT (RS256, verified here with nothing but pow()), pick the principal
by claim priority, render the certificate subject.

    idprop run --impl 'exec:python3 examples/adapters/python-principal-mapper/adapter.py' --role principal-mapping
"""
import base64
import hashlib
import json
import sys

BUSINESS = ["user_name", "email", "mail", "user_uuid", "sub"]
TECHNICAL = ["client_id", "cid", "sub", "azp"]
ATTRIBUTES = {"CN", "EMAIL", "L", "O", "OU", "ST", "C"}
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class Refused(Exception):
    pass


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def strict_object(raw, what):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise Refused(f"malformed token: duplicate key in {what}")
        return dict(pairs)
    try:
        value = json.loads(raw, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as e:
        raise Refused(f"malformed token: {what} is not JSON ({e})")
    if not isinstance(value, dict):
        raise Refused(f"malformed token: {what} is not an object")
    return value


def rs256_verify(jwk, signing_input, signature):
    n = int.from_bytes(b64url(jwk["n"]), "big")
    e = int.from_bytes(b64url(jwk["e"]), "big")
    k = (n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    if len(signature) != k or s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    digest = SHA256_DIGEST_INFO + hashlib.sha256(signing_input).digest()
    expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest)) + b"\x00" + digest
    return em == expected


def validate(token, trust, now):
    if len(token) > 16 * 1024:
        raise Refused("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise Refused(f"malformed token: {len(parts)} segments, expected 3")
    try:
        header_raw, payload_raw, signature = b64url(parts[0]), b64url(parts[1]), b64url(parts[2])
    except ValueError:
        raise Refused("malformed token: not base64url")
    header = strict_object(header_raw, "header")
    claims = strict_object(payload_raw, "payload")
    if header.get("alg") != "RS256":
        raise Refused(f"algorithm {header.get('alg')!r} not accepted (only RS256)")
    if not signature:
        raise Refused("signature missing")
    iss = claims.get("iss")
    idp = next((t for t in trust if t.get("issuer") == iss), None)
    if idp is None:
        raise Refused(f"issuer {iss!r} is not trusted")
    jku = header.get("jku")
    if jku is not None and idp.get("jwks_uri") and jku != idp["jwks_uri"]:
        raise Refused(f"jku {jku!r} is not the trusted issuer's key URL (never fetched)")
    keys = idp.get("jwks", {}).get("keys", [])
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.get("kid") == kid]
    if not candidates:
        raise Refused(f"unknown signing key id {kid!r}")
    signing_input = (parts[0] + "." + parts[1]).encode()
    if not any(k.get("kty") == "RSA" and rs256_verify(k, signing_input, signature) for k in candidates):
        raise Refused("signature does not verify")
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not isinstance(exp, (int, float)):
        raise Refused("malformed token: no exp claim")
    if exp <= now:
        raise Refused("token expired")
    if isinstance(nbf, (int, float)) and nbf > now:
        raise Refused("token not yet valid (nbf)")
    if isinstance(iat, (int, float)) and iat > now + 300:
        raise Refused("token issued in the future (iat)")
    return claims


def principal(claims):
    technical = claims.get("grant_type") == "client_credentials" and "user_name" not in claims
    for claim in TECHNICAL if technical else BUSINESS:
        value = claims.get(claim)
        if value is None:
            continue
        if not isinstance(value, str) or value == "":
            raise Refused(f"principal claim {claim!r} is not a non-empty string")
        return value, ("Technical" if technical else "Business")
    raise Refused("token has no principal claim")


def variable(claims, name, principal_name, user_type):
    if name == "name":
        return principal_name
    if name == "user_type":
        return user_type
    if name.startswith("cp."):
        return scalar(claims.get(name[3:]), name)
    attrs = claims.get("xs.user.attributes")
    if isinstance(attrs, dict) and name in attrs:
        v = attrs[name]
        v = v[0] if isinstance(v, list) and v else v
        if v is not None:
            return scalar(v, name)
    v = scalar(claims.get(name), name)
    if v is not None:
        return v
    if name == "mail":
        return scalar(claims.get("email"), "email")
    if name == "login_name":
        return scalar(claims.get("user_name"), "user_name")
    if name == "display_name":
        parts = [scalar(claims.get("given_name"), "given_name"), scalar(claims.get("family_name"), "family_name")]
        parts = [p for p in parts if p]
        return " ".join(parts) if parts else None
    return None


def scalar(v, name):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, int, float)):
        return str(v)
    raise Refused(f"subject pattern variable ${{{name}}} is not a string in the token")


def escape(value):
    out = []
    for i, c in enumerate(value):
        if c in '"+,;<>\\':
            out.append("\\" + c)
        elif c == "#" and i == 0:
            out.append("\\#")
        elif c == " " and (i == 0 or i == len(value) - 1):
            out.append("\\ ")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("".join(f"\\{b:02X}" for b in c.encode()))
        else:
            out.append(c)
    return "".join(out)


def split_unescaped(s, sep):
    parts, cur, i = [], "", 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            cur += s[i:i + 2]
            i += 2
            continue
        if s[i] == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += s[i]
        i += 1
    parts.append(cur)
    return parts


def render(pattern, claims, principal_name, user_type):
    rdns = []
    for part in split_unescaped(pattern, ","):
        attr, eq, template = part.strip().partition("=")
        attr = attr.strip().upper()
        if not eq or attr not in ATTRIBUTES:
            raise Refused(f"subject pattern {pattern!r}: bad attribute {part!r}")
        value, i, t = "", 0, template.strip()
        while i < len(t):
            if t[i] == "\\" and i + 1 < len(t):
                value += t[i + 1]
                i += 2
            elif t.startswith("${", i):
                end = t.find("}", i)
                if end < 0:
                    raise Refused(f"subject pattern {pattern!r}: unterminated variable")
                name = t[i + 2:end].strip()
                v = variable(claims, name, principal_name, user_type)
                if v is None:
                    raise Refused(f"subject pattern variable ${{{name}}} has no value in the token")
                value += v  # inserted once, never scanned again
                i = end + 1
            else:
                value += t[i]
                i += 1
        if value == "":
            raise Refused(f"subject pattern {pattern!r} renders an empty {attr}")
        rdns.append(f"{attr}={escape(value)}")
    return ",".join(rdns)


def map_principal(msg):
    try:
        claims = validate(msg["token"], msg.get("trust", []), msg["now"])
        name, user_type = principal(claims)
        subject = render(msg.get("subject_pattern") or "CN=${name}", claims, name, user_type)
        return {"accepted": True, "principal": name, "subject": subject}
    except Refused as r:
        return {"accepted": False, "reason": str(r)}


def answer(msg):
    op, mid = msg.get("op"), msg.get("id")
    if op == "hello":
        return {"v": 1, "id": mid, "ok": True, "result": {"name": "python-principal-mapper", "version": "1.0.0", "roles": ["principal-mapping"], "reusable": True}}
    if op == "reset":  # it keeps no state: every answer is from the request alone
        return {"v": 1, "id": mid, "ok": True, "result": {}}
    if op == "map_principal":
        return {"v": 1, "id": mid, "ok": True, "result": map_principal(msg)}
    return {"v": 1, "id": mid, "ok": False, "error": {"code": "unsupported", "message": f"op {op!r}"}}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            reply = answer(msg)
        except Exception as e:  # never die on one bad message
            reply = {"v": 1, "id": 0, "ok": False, "error": {"code": "bad_request", "message": str(e)}}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
