"""sap-xssec (PyPI, SAP's Python security library), unchanged, against the
idprop stack: validates a token with the application's `xsuaa` binding from
VCAP_SERVICES (keys fetched from the mock UAA through HTTPS_PROXY) and checks
the application's scopes. Prints one JSON line.

    python xssec_check.py <token> [exchange]

With `exchange`, the validated user token is then exchanged by the library's
jwt-bearer call (`request_token_for_client`) for a token of the
`destination` binding's client; the new token's claims are reported.
"""

import base64

import json
import os
import sys

from sap.xssec import create_security_context_xsuaa


def main():
    credentials = json.loads(os.environ["VCAP_SERVICES"])["xsuaa"][0]["credentials"]
    out = {}
    try:
        ctx = create_security_context_xsuaa(sys.argv[1], credentials)
        out["validated"] = True
        out["user"] = ctx.get_logon_name()
        out["read"] = ctx.check_local_scope("Read")
        out["admin"] = ctx.check_local_scope("Admin")
        out["client"] = ctx.get_clientid()
        out["grant_type"] = ctx.get_grant_type()
    except Exception as e:  # the library's refusal, reported
        out["validated"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    if out["validated"] and sys.argv[2:] == ["exchange"]:
        # A failed exchange is its own finding, not a failed validation.
        try:
            dest = json.loads(os.environ["VCAP_SERVICES"])["destination"][0]["credentials"]
            exchanged = ctx.request_token_for_client(dest)
            payload = exchanged.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            out["exchanged"] = {k: claims.get(k) for k in ("user_name", "cid", "grant_type", "zid", "origin")}
        except Exception as e:
            out["exchange_error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
