"""Pays a Leasehold server with the official x402 Python client, unchanged.

    python pay.py BASE_URL PRIVATE_KEY MODE

POSTs a small file to BASE_URL/api/store through `x402HTTPAdapter` (requests) over an
`x402ClientSync` with the exact EVM scheme registered by `register_exact_evm_client`.
The server answers `402` with the v1 body and the v2 `PAYMENT-REQUIRED` header:

- MODE `v2`: the client sees the answer as it is and pays with v2 (`PAYMENT-SIGNATURE`).
- MODE `v1`: a pass-through below the client (the adapter's `build_response`, the hook
  requests gives adapters for turning a raw response into a `Response`) deletes
  `PAYMENT-REQUIRED` from every response, so the client sees a v1 server and pays with
  v1 (`X-PAYMENT`). The client library itself is not changed.

After a `201` the wallet signs in with Sign-In with Ethereum (eth-account's
`sign_message`) and downloads the file with its session (`siwe` in the output).

Prints one JSON line: `status`, `body` (JSON when it is), `payment_response_header`
(the raw `PAYMENT-RESPONSE` or `X-PAYMENT-RESPONSE`), `receipt_header` (its name),
`receipt` (decoded by the client library), `paid_with` (the payment header the client
sent on its retry), `wallet` (the key's address). Exits 0 on `201`, 1 on another status,
2 when the client failed.
"""

from __future__ import annotations

import json
import sys
import traceback

import requests
from eth_account import Account
from eth_account.messages import encode_defunct
from x402 import x402ClientSync
from x402.http import decode_payment_response_header, x402HTTPClientSync
from x402.http.clients.requests import x402HTTPAdapter
from x402.mechanisms.evm.exact import register_exact_evm_client

CONTENT = b"paid with the official x402 Python client\n"


class Recording(x402HTTPAdapter):
    """The official adapter, with a look at what passes beneath it: records the payment
    header of each request and, with `strip_v2`, removes `PAYMENT-REQUIRED` from each
    response before the adapter reads it."""

    def __init__(self, client: x402HTTPClientSync, strip_v2: bool) -> None:
        super().__init__(client)
        self.strip_v2 = strip_v2
        self.paid_with: list[str] = []

    def build_response(self, req, resp):  # noqa: ANN001 (requests' own signature)
        response = super().build_response(req, resp)
        for name in ("PAYMENT-SIGNATURE", "X-PAYMENT"):
            if name in req.headers:
                self.paid_with.append(name)
        if self.strip_v2:
            response.headers.pop("PAYMENT-REQUIRED", None)
        return response


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[3] not in ("v1", "v2"):
        print(__doc__, file=sys.stderr)
        return 64
    base, key, mode = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    account = Account.from_key(key)
    print(f"paying as {account.address} ({mode})", file=sys.stderr)

    client = x402ClientSync()
    register_exact_evm_client(client, account)
    adapter = Recording(x402HTTPClientSync(client), strip_v2=(mode == "v1"))
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    out: dict = {"wallet": account.address, "mode": mode}
    try:
        response = session.post(
            f"{base}/api/store",
            data=CONTENT,
            headers={
                "X-Duration-Seconds": "3600",
                "X-Size-Bytes": str(len(CONTENT)),
                "X-File-Name": f"python-{mode}.txt",
                "Content-Type": "text/plain",
            },
            timeout=60,
        )
    except Exception as e:  # the client's own failure: report it, exit 2
        out["error"] = f"{type(e).__name__}: {e}"
        out["traceback"] = traceback.format_exc()
        out["paid_with"] = adapter.paid_with
        print(json.dumps(out))
        return 2

    try:
        body = response.json()
    except ValueError:
        body = response.text
    name = next((n for n in ("PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE") if n in response.headers), None)
    raw = response.headers.get(name) if name else None
    out.update(
        status=response.status_code,
        body=body,
        payment_response_header=raw,
        receipt_header=name,
        receipt=decode_payment_response_header(raw).model_dump(by_alias=True, exclude_none=True) if raw else None,
        paid_with=adapter.paid_with,
    )
    if response.status_code == 201 and isinstance(body, dict):
        out["siwe"] = sign_in_and_download(base, account, body["lease_id"])
    print(json.dumps(out))
    return 0 if response.status_code == 201 else 1


def sign_in_and_download(base: str, account, lease_id: str) -> dict:  # noqa: ANN001
    """Sign-In with Ethereum made with eth-account (`personal_sign` of the server's
    EIP-4361 message), then the wallet session downloads the file it paid for."""
    challenge = requests.get(f"{base}/v1/auth/challenge", params={"wallet": account.address}, timeout=30).json()
    signed = account.sign_message(encode_defunct(text=challenge["message"]))
    verified = requests.post(
        f"{base}/v1/auth/verify",
        json={"message": challenge["message"], "signature": "0x" + signed.signature.hex().removeprefix("0x")},
        timeout=30,
    )
    token = verified.json().get("token", "")
    download = requests.get(
        f"{base}/api/download/{lease_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return {
        "verify_status": verified.status_code,
        "token_prefix": token[:10],
        "download_status": download.status_code,
        "downloaded": download.content == CONTENT,
    }


if __name__ == "__main__":
    sys.exit(main())
