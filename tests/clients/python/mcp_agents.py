"""Agents on Leasehold's /mcp with the official MCP Python SDK (`mcp`), unchanged.

    python mcp_agents.py MCP_URL API_KEY agents
        lists the tools; agent A (API key) stores and hands off, agent B (no credential)
        claims, a second claim fails with handoff_exhausted; mailbox create -> drop -> poll;
        checkpoint create -> put with if_match -> a stale if_match fails with
        version_conflict; owner tools without a credential fail with unauthorized.
    python mcp_agents.py MCP_URL PRIVATE_KEY x402
        an agent with only a wallet stores a file through the x402 MCP binding; the payment
        payload is made by the official x402 client (x402Client + the exact EVM
        scheme) and sent by its MCP wrapper (x402MCPClient).

Prints one JSON line with what happened; tests/it/mcp_clients.rs checks it.
"""

import asyncio
import json
import sys
import types

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def structured(result):
    """The tool result's structuredContent, and whether it is an error."""
    return result.structured_content, result.is_error


async def call(session, name, args, meta=None):
    result = await session.call_tool(name, args, meta=meta)
    content, is_error = structured(result)
    # The JSON text of content[0] is the same value.
    assert json.loads(result.content[0].text) == content, (name, result)
    return content, is_error


class Agent:
    def __init__(self, url, key=None):
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def __aenter__(self):
        self.client = httpx2.AsyncClient(headers=self.headers, timeout=60)
        self.transport = streamable_http_client(self.url, http_client=self.client)
        read, write = await self.transport.__aenter__()
        self.session = ClientSession(read, write)
        await self.session.__aenter__()
        await self.session.initialize()
        return self.session

    async def __aexit__(self, *exc):
        await self.session.__aexit__(*exc)
        await self.transport.__aexit__(*exc)
        await self.client.aclose()


async def agents(url, key):
    out = {}
    async with Agent(url, key) as a, Agent(url) as b:
        tools = await a.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        out["schemas_ok"] = all(t.input_schema.get("type") == "object" for t in tools.tools)

        quote, err = await call(b, "leasehold_quote", {"size_bytes": 11, "duration_seconds": 3600})
        out["quote"] = {"error": err, "cost_micros": quote.get("cost_micros")}

        stored, err = await call(a, "leasehold_store", {
            "content": "hello agent", "file_name": "note.txt", "duration_seconds": 3600,
            "content_type": "text/plain"})
        assert not err, stored
        out["stored"] = stored
        handoff, err = await call(a, "leasehold_handoff", {"lease_id": stored["lease_id"], "max_claims": 1})
        assert not err, handoff
        out["handoff"] = handoff
        first, err = await call(b, "leasehold_claim", {"claim_url": handoff["claim_url"]})
        out["first_claim"] = {"error": err, "result": first}
        second, err = await call(b, "leasehold_claim", {"claim_url": handoff["claim_url"]})
        out["second_claim"] = {"error": err, "code": second.get("code")}
        downloaded, err = await call(a, "leasehold_download", {"lease_id": stored["lease_id"]})
        out["download"] = {"error": err, "content": downloaded.get("content")}

        box, err = await call(a, "leasehold_mailbox_create", {"capacity_bytes": 65536, "duration_seconds": 3600})
        assert not err, box
        dropped, err = await call(b, "leasehold_mailbox_drop", {
            "drop_url": box["drop_url"], "content": "{\"task\": 1}", "content_type": "application/json"})
        out["drop"] = {"error": err, "seq": dropped.get("seq"), "message_id": dropped.get("message_id")}
        polled, err = await call(a, "leasehold_mailbox_poll", {"lease_id": box["lease_id"], "after": 0, "wait": 1})
        out["poll"] = {"error": err, "count": len(polled.get("items", [])), "next_cursor": polled.get("next_cursor")}
        read, err = await call(a, "leasehold_mailbox_read", {"lease_id": box["lease_id"], "message_id": dropped["message_id"]})
        out["read"] = {"error": err, "content": read.get("content"), "seq": read.get("seq")}

        created, err = await call(a, "leasehold_checkpoint_create", {
            "workflow_id": "mcp-flow", "duration_seconds": 3600, "content": {"step": 1}})
        assert not err, created
        put, err = await call(a, "leasehold_checkpoint_put", {
            "workflow_id": "mcp-flow", "content": {"step": 2}, "if_match": created["version"]})
        out["put"] = {"error": err, "version": put.get("version")}
        stale, err = await call(a, "leasehold_checkpoint_put", {
            "workflow_id": "mcp-flow", "content": {"step": 3}, "if_match": created["version"]})
        out["stale_put"] = {"error": err, "code": stale.get("code"), "current_version": stale.get("current_version")}
        got, err = await call(a, "leasehold_checkpoint_get", {"workflow_id": "mcp-flow"})
        out["get"] = {"error": err, "content": got.get("content"), "version": got.get("version")}

        no_key, err = await call(b, "leasehold_leases", {})
        out["no_credential"] = {"error": err, "code": no_key.get("code")}
        bad, err = await call(a, "leasehold_quote", {"size_bytes": "many", "duration_seconds": 60})
        out["bad_argument"] = {"error": err, "code": bad.get("code"), "argument": bad.get("argument")}
    return out


class SessionForX402:
    """The x402 MCP client calls `call_tool(params, **kwargs)` on the MCP client it wraps
    and reads camelCase attributes from the result; the MCP SDK's ClientSession takes
    (name, arguments, meta=…) and answers pydantic models. This is only that glue."""

    def __init__(self, session):
        self.session = session

    async def call_tool(self, params, **kwargs):
        # (The x402 wrapper's read timeout is in seconds; the SDK's default is kept.)
        result = await self.session.call_tool(params["name"], params.get("arguments"), meta=params.get("_meta"))
        dumped = result.model_dump(by_alias=True, exclude_none=True)
        self.last = dumped
        ns = types.SimpleNamespace()
        ns.content = dumped.get("content", [])
        ns.isError = dumped.get("isError", False)
        ns.structuredContent = dumped.get("structuredContent")
        setattr(ns, "_meta", dumped.get("_meta", {}))
        return ns


async def paid(url, private_key):
    from eth_account import Account
    from x402 import x402Client
    from x402.mcp.client_async import x402MCPClient
    from x402.mechanisms.evm.exact import register_exact_evm_client

    account = Account.from_key(private_key)
    payments = x402Client()
    register_exact_evm_client(payments, account)
    out = {"wallet": account.address}
    async with Agent(url) as session:
        glue = SessionForX402(session)
        seen = []
        client = x402MCPClient(glue, payments, auto_payment=True)
        client.on_payment_required(lambda ctx: seen.append(ctx.payment_required.model_dump(by_alias=True)) or None)
        result = await client.call_tool("leasehold_store", {
            "content": "paid by a wallet", "file_name": "paid.txt", "duration_seconds": 3600})
        out["payment_required"] = seen[0] if seen else None
        out["payment_made"] = result.payment_made
        out["is_error"] = result.is_error
        out["result"] = glue.last.get("structuredContent")
        out["payment_response"] = result.payment_response.model_dump(by_alias=True) if result.payment_response else None
        out["result_meta_keys"] = sorted(glue.last.get("_meta", {}).keys())
    return out


def main():
    url, secret, scenario = sys.argv[1], sys.argv[2], sys.argv[3]
    if scenario == "agents":
        out = asyncio.run(agents(url, secret))
    elif scenario == "x402":
        out = asyncio.run(paid(url, secret))
    else:
        sys.exit(f"unknown scenario {scenario}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
