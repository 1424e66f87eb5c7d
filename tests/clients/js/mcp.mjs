// Agents on Leasehold's /mcp with the official MCP TypeScript SDK, unchanged.
//
//   node mcp.mjs MCP_URL API_KEY
//
// Lists the tools; agent A (API key) stores and hands off, agent B (no credential) claims,
// a second claim fails with handoff_exhausted; mailbox create -> drop -> poll; checkpoint
// create -> put with if_match -> a stale if_match fails with version_conflict; owner tools
// without a credential fail with unauthorized. Prints one JSON line for
// tests/it/mcp_clients.rs.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, key] = process.argv.slice(2);

async function agent(name, apiKey) {
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  return client;
}

async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  const fromText = JSON.parse(result.content[0].text);
  if (JSON.stringify(fromText) !== JSON.stringify(result.structuredContent)) {
    throw new Error(`${name}: text and structuredContent differ`);
  }
  return [result.structuredContent, result.isError === true];
}

const out = {};
const a = await agent("agent-a", key);
const b = await agent("agent-b", null);

const tools = await a.listTools();
out.tools = tools.tools.map((t) => t.name).sort();
out.schemas_ok = tools.tools.every((t) => t.inputSchema && t.inputSchema.type === "object");

const [stored, storeErr] = await call(a, "leasehold_store", {
  content: "hello from node", file_name: "node.txt", duration_seconds: 3600, content_type: "text/plain",
});
if (storeErr) throw new Error(JSON.stringify(stored));
out.stored = stored;
const [handoff] = await call(a, "leasehold_handoff", { lease_id: stored.lease_id, max_claims: 1 });
out.handoff = handoff;
const [first, firstErr] = await call(b, "leasehold_claim", { claim_url: handoff.claim_url });
out.first_claim = { error: firstErr, result: first };
const [second, secondErr] = await call(b, "leasehold_claim", { claim_url: handoff.claim_url });
out.second_claim = { error: secondErr, code: second.code };
const [downloaded, dlErr] = await call(a, "leasehold_download", { lease_id: stored.lease_id });
out.download = { error: dlErr, content: downloaded.content };

const [box] = await call(a, "leasehold_mailbox_create", { capacity_bytes: 65536, duration_seconds: 3600 });
const [dropped, dropErr] = await call(b, "leasehold_mailbox_drop", {
  drop_url: box.drop_url, content: '{"task": 1}', content_type: "application/json",
});
out.drop = { error: dropErr, seq: dropped.seq, message_id: dropped.message_id };
const [polled, pollErr] = await call(a, "leasehold_mailbox_poll", { lease_id: box.lease_id, after: 0, wait: 1 });
out.poll = { error: pollErr, count: (polled.items || []).length, next_cursor: polled.next_cursor };
const [read, readErr] = await call(a, "leasehold_mailbox_read", { lease_id: box.lease_id, message_id: dropped.message_id });
out.read = { error: readErr, content: read.content, seq: read.seq };

const [created, createErr] = await call(a, "leasehold_checkpoint_create", {
  workflow_id: "mcp-flow", duration_seconds: 3600, content: { step: 1 },
});
if (createErr) throw new Error(JSON.stringify(created));
const [put, putErr] = await call(a, "leasehold_checkpoint_put", {
  workflow_id: "mcp-flow", content: { step: 2 }, if_match: created.version,
});
out.put = { error: putErr, version: put.version };
const [stale, staleErr] = await call(a, "leasehold_checkpoint_put", {
  workflow_id: "mcp-flow", content: { step: 3 }, if_match: created.version,
});
out.stale_put = { error: staleErr, code: stale.code, current_version: stale.current_version };
const [got, getErr] = await call(a, "leasehold_checkpoint_get", { workflow_id: "mcp-flow" });
out.get = { error: getErr, content: got.content, version: got.version };

const [noKey, noKeyErr] = await call(b, "leasehold_leases", {});
out.no_credential = { error: noKeyErr, code: noKey.code };

await a.close();
await b.close();
console.log(JSON.stringify(out));
