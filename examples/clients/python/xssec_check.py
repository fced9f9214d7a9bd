"""sap-xssec (PyPI, SAP's Python security library), unchanged, against the
idprop stack: validates a token with the application's `xsuaa` binding from
VCAP_SERVICES (keys fetched from the mock UAA through HTTPS_PROXY) and checks
the application's scopes. Prints one JSON line.

    python xssec_check.py <token>
"""

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
    except Exception as e:  # the library's refusal, reported
        out["validated"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
