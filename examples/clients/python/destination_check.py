"""SAP Cloud SDK for Python, unchanged, against the idprop stack.

Reads destinations through the SDK's `get_destination` (the Destination
service's v2 consume API) with the binding of `.idprop/env.sh`
(`CLOUD_SDK_CFG_DESTINATION_DEFAULT_*`, `HTTPS_PROXY`, `REQUESTS_CA_BUNDLE`)
and prints one JSON line: one result per requested lookup.

    python destination_check.py '[{"name": "client-credentials-example"},
                                   {"name": "x", "options": {"fragment_name": "f"}}]'

`options` are `ConsumptionOptions` fields (fragment_name, fragment_optional,
user_token, refresh_token, subject_token, subject_token_type, actor_token,
actor_token_type, …).
"""

import json
import sys

from sap_cloud_sdk.destination import ConsumptionOptions, create_client


def lookup(client, spec):
    options = ConsumptionOptions(**spec["options"]) if spec.get("options") else None
    try:
        d = client.get_destination(spec["name"], options=options)
    except Exception as e:  # the SDK's own error, reported, not raised
        return {"name": spec["name"], "exception": f"{type(e).__name__}: {e}"}
    if d is None:
        return {"name": spec["name"], "found": False}
    return {
        "name": spec["name"],
        "found": True,
        "url": d.url,
        "authentication": str(getattr(d.authentication, "value", d.authentication)),
        "properties": d.properties,
        "auth_tokens": [
            {"type": t.type, "value": t.value, "error": t.error, "http_header": t.http_header}
            for t in d.auth_tokens
        ],
    }


def main():
    client = create_client()
    print(json.dumps([lookup(client, s) for s in json.loads(sys.argv[1])]))


if __name__ == "__main__":
    main()
