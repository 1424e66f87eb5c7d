// Pays a Leasehold server with the official x402 fetch client (@x402/fetch + @x402/evm,
// viem's local account), unchanged.
//
//     node pay.mjs BASE_URL PRIVATE_KEY MODE
//
// POSTs a small file to BASE_URL/api/store through `wrapFetchWithPayment` over an
// `x402Client` with the exact EVM scheme registered by `registerExactEvmScheme`. The
// server answers `402` with the v1 body and the v2 `PAYMENT-REQUIRED` header:
//
// - MODE `v2`: the client sees the answer as it is and pays with v2 (`PAYMENT-SIGNATURE`).
// - MODE `v1`: the `fetch` handed to the client is a pass-through that deletes
//   `PAYMENT-REQUIRED` from every response, so the client sees a v1 server and pays with
//   v1 (`X-PAYMENT`). The client library itself is not changed.
//
// Prints one JSON line: `status`, `body` (JSON when it is), `payment_response_header`
// (the raw `PAYMENT-RESPONSE` or `X-PAYMENT-RESPONSE`), `receipt_header` (its name),
// `receipt` (decoded by the client library), `paid_with` (the payment header the client
// sent on its retry), `wallet` (the key's address). Exits 0 on `201`, 1 on another
// status, 2 when the client failed.

import { decodePaymentResponseHeader, wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const CONTENT = new TextEncoder().encode("paid with the official x402 fetch client\n");

const [base, key, mode] = process.argv.slice(2);
if (!base || !key || !["v1", "v2"].includes(mode)) {
  console.error("usage: node pay.mjs BASE_URL PRIVATE_KEY v2|v1");
  process.exit(64);
}
const account = privateKeyToAccount(key);
console.error(`paying as ${account.address} (${mode})`);

const paidWith = [];
// What passes beneath the client: records the payment header of each request and, in v1
// mode, hands the client each response without `PAYMENT-REQUIRED`.
async function passThrough(input, init) {
  const request = new Request(input, init);
  for (const name of ["PAYMENT-SIGNATURE", "X-PAYMENT"]) {
    if (request.headers.has(name)) paidWith.push(name);
  }
  const response = await fetch(request);
  if (mode !== "v1") return response;
  const headers = new Headers(response.headers);
  headers.delete("PAYMENT-REQUIRED");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

const client = new x402Client();
registerExactEvmScheme(client, { signer: account });
const fetchWithPayment = wrapFetchWithPayment(passThrough, client);

const out = { wallet: account.address, mode };
let response;
try {
  response = await fetchWithPayment(`${base.replace(/\/$/, "")}/api/store`, {
    method: "POST",
    body: CONTENT,
    headers: {
      "X-Duration-Seconds": "3600",
      "X-Size-Bytes": String(CONTENT.length),
      "X-File-Name": `js-${mode}.txt`,
      "Content-Type": "text/plain",
    },
    signal: AbortSignal.timeout(60_000),
  });
} catch (e) {
  out.error = String(e?.stack ?? e);
  out.paid_with = paidWith;
  console.log(JSON.stringify(out));
  process.exit(2);
}

const text = await response.text();
let body;
try {
  body = JSON.parse(text);
} catch {
  body = text;
}
const name = ["PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE"].find((n) => response.headers.has(n)) ?? null;
const raw = name ? response.headers.get(name) : null;
Object.assign(out, {
  status: response.status,
  body,
  payment_response_header: raw,
  receipt_header: name,
  receipt: raw ? decodePaymentResponseHeader(raw) : null,
  paid_with: paidWith,
});
console.log(JSON.stringify(out));
process.exit(response.status === 201 ? 0 : 1);
