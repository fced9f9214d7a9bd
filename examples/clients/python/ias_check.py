"""sap-xssec's IAS validation, unchanged, against the idprop stack's IAS
tenant: validates a token with the `identity` binding of VCAP_SERVICES
(discovery and keys fetched through HTTPS_PROXY). Prints one JSON line.

    python ias_check.py <token>
"""

import json
import os
import sys

from sap.xssec import create_security_context_ias


def main():
    credentials = json.loads(os.environ["VCAP_SERVICES"])["identity"][0]["credentials"]
    out = {}
    try:
        ctx = create_security_context_ias(sys.argv[1], credentials)
        out["validated"] = True
    except Exception as e:  # the library's refusal, reported
        out["validated"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
