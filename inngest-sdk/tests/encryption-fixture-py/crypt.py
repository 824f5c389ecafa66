"""Runs the Python SDK's official encryption middleware on values, for the Rust SDK's
differential test (tests/encryption.rs). Reads a JSON array of operations on stdin and writes
a JSON array of results: {"ok": value} or {"error": message}.

Each operation has "op" ("encrypt" or "decrypt"), "keys" (the first encrypts; the rest are the
fallback decryption keys, as an app configures the middleware) and "value".
"""

import json
import sys

import inngest
from inngest_encryption import EncryptionMiddleware

client = inngest.Inngest(app_id="differential", is_production=False)


def middleware(keys):
    return EncryptionMiddleware(
        client, None, keys[0], fallback_decryption_keys=keys[1:]
    )


results = []
for operation in json.load(sys.stdin):
    mw = middleware(operation["keys"])
    try:
        if operation["op"] == "encrypt":
            results.append({"ok": mw._encrypt(operation["value"])})
        else:
            results.append({"ok": mw._decrypt(operation["value"])})
    except Exception as error:  # noqa: BLE001 - every failure is a result here
        results.append({"error": str(error) or type(error).__name__})
json.dump(results, sys.stdout)
