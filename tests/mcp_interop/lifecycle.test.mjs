// MCP lifecycle and the tool catalogue as the official TypeScript SDK sees
// them: initialize (negotiated protocolVersion, capabilities, instructions),
// tools/list (schemas and annotations), ping, unsupported methods, and bad
// input, after each of which the session keeps working.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { LATEST_PROTOCOL_VERSION, CallToolResultSchema, EmptyResultSchema, ErrorCode } from '@modelcontextprotocol/sdk/types.js';

import { RawClient, connectClient, startServer, tempHome } from './helpers.mjs';

const EXPECTED_TOOLS = [
  'shim_auto_checkpoint', 'shim_check_recovery', 'shim_monitor_signals', 'shim_session_status',
  'shim_force_checkpoint', 'shim_clear_state', 'shim_state_get', 'shim_state_set', 'shim_publish',
  'shim_read_messages', 'shim_lock_acquire', 'shim_lock_release', 'shim_task_submit', 'shim_task_claim',
  'shim_task_complete', 'shim_task_fail', 'shim_task_status', 'shim_queue_stats', 'shim_worker_register',
];

describe('MCP lifecycle and catalogue', () => {
  let home;
  let server;
  let conn;

  before(async () => {
    home = tempHome();
    // A request line may hold a checkpoint over the 8 MiB checkpoint limit.
    server = await startServer(home, ['--max-message-bytes', String(16 << 20)]);
    conn = await connectClient(home);
  });

  after(async () => {
    await conn?.client.close();
    await server?.stop();
    home?.cleanup();
  });

  // The session works: a cheap call that must succeed.
  async function stillWorks() {
    const r = await conn.client.callTool({ name: 'shim_state_get', arguments: { key: 'probe' } });
    assert.equal(r.isError, false);
    assert.equal(r.structuredContent.found, false);
  }

  test('initialize negotiates the newest protocol version and names the server', () => {
    const init = conn.seen.find((m) => m.id !== undefined && m.result?.protocolVersion);
    assert.ok(init, 'an initialize result was received');
    assert.equal(init.result.protocolVersion, LATEST_PROTOCOL_VERSION);
    assert.equal(init.result.protocolVersion, '2025-11-25');
    assert.deepEqual(conn.client.getServerCapabilities(), { tools: {}, logging: {} });
    const info = conn.client.getServerVersion();
    assert.equal(info.name, 'shim');
    assert.equal(typeof info.version, 'string');
    const instructions = conn.client.getInstructions();
    assert.match(instructions, /shim_check_recovery/);
    assert.match(instructions, /shim_auto_checkpoint/);
  });

  test('initialize answers each supported version it is asked for, else the newest', async () => {
    const raw = await RawClient.connect(home.socket);
    try {
      for (const [asked, want] of [
        ['2025-11-25', '2025-11-25'],
        ['2025-06-18', '2025-06-18'],
        ['2025-03-26', '2025-03-26'],
        ['2024-11-05', '2025-11-25'],
        ['1999-01-01', '2025-11-25'],
      ]) {
        const r = await raw.call('initialize', {
          protocolVersion: asked,
          capabilities: {},
          clientInfo: { name: 'raw', version: '0' },
        });
        assert.equal(r.protocolVersion, want, `asked ${asked}`);
      }
      assert.deepEqual(await raw.call('ping', {}), {});
    } finally {
      raw.close();
    }
  });

  test('ping and logging/setLevel answer {}', async () => {
    assert.deepEqual(await conn.client.ping(), {});
    await conn.client.setLoggingLevel('info');
  });

  test('tools/list: all 19 tools with object schemas, titles, descriptions and annotations', async () => {
    const { tools } = await conn.client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), [...EXPECTED_TOOLS].sort());
    for (const t of tools) {
      const where = t.name;
      assert.equal(t.inputSchema?.type, 'object', `${where} inputSchema`);
      assert.equal(typeof t.inputSchema.properties, 'object', `${where} inputSchema.properties`);
      assert.equal(t.outputSchema?.type, 'object', `${where} outputSchema`);
      assert.equal(typeof t.outputSchema.properties, 'object', `${where} outputSchema.properties`);
      for (const r of t.inputSchema.required ?? []) assert.ok(r in t.inputSchema.properties, `${where} requires ${r}`);
      for (const r of t.outputSchema.required ?? []) assert.ok(r in t.outputSchema.properties, `${where} outputs ${r}`);
      assert.ok(t.title && t.title.length > 3, `${where} title`);
      assert.ok(t.description && t.description.length > 20, `${where} description`);
      const a = t.annotations;
      assert.ok(a, `${where} annotations`);
      for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint']) {
        assert.equal(typeof a[hint], 'boolean', `${where} ${hint}`);
      }
      // A read-only tool cannot be destructive.
      if (a.readOnlyHint) assert.equal(a.destructiveHint, false, `${where} read-only yet destructive`);
    }
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    assert.equal(byName.shim_clear_state.annotations.destructiveHint, true);
    assert.equal(byName.shim_state_get.annotations.readOnlyHint, true);
    assert.equal(byName.shim_session_status.annotations.readOnlyHint, true);
    assert.equal(byName.shim_state_set.annotations.readOnlyHint, false);
  });

  test('unknown tool is JSON-RPC -32602', async () => {
    await assert.rejects(
      conn.client.callTool({ name: 'shim_no_such_tool', arguments: {} }),
      (e) => e.code === ErrorCode.InvalidParams && /unknown tool/.test(e.message),
    );
    await stillWorks();
  });

  test('malformed tools/call (no name, arguments not an object) is -32602', async () => {
    await assert.rejects(
      conn.client.request({ method: 'tools/call', params: { arguments: {} } }, CallToolResultSchema),
      (e) => e.code === ErrorCode.InvalidParams,
    );
    await assert.rejects(
      conn.client.request({ method: 'tools/call', params: { name: 'shim_state_get', arguments: [1, 2] } }, CallToolResultSchema),
      (e) => e.code === ErrorCode.InvalidParams,
    );
    await stillWorks();
  });

  test('an unsupported method is -32601 at once', async () => {
    const t0 = Date.now();
    await assert.rejects(
      conn.client.request({ method: 'server/discover', params: {} }, EmptyResultSchema, { timeout: 5000 }),
      (e) => e.code === ErrorCode.MethodNotFound,
    );
    assert.ok(Date.now() - t0 < 2000);
    await stillWorks();
  });

  test('missing and ill-typed arguments are isError results naming the field', async () => {
    const cases = [
      ['shim_state_set', { key: 'k' }, 'value'],
      ['shim_state_get', {}, 'key'],
      ['shim_state_get', { key: 5 }, 'key'],
      ['shim_lock_acquire', { name: 'L', owner: 'me', ttl_ms: 'soon' }, 'ttl_ms'],
      ['shim_task_claim', { queues: 'q', worker_id: 'w' }, 'queues'],
      ['shim_force_checkpoint', { session_id: 's' }, 'data'],
      ['shim_monitor_signals', { session_id: 's', signals: 'many' }, 'signals'],
      ['shim_check_recovery', {}, null],
      ['shim_task_submit', { queue: 'q', priority: 'high', payload: 1 }, 'priority'],
    ];
    for (const [name, args, field] of cases) {
      const r = await conn.client.callTool({ name, arguments: args });
      assert.equal(r.isError, true, `${name} ${JSON.stringify(args)}`);
      assert.equal(r.structuredContent, undefined);
      const text = r.content[0].text;
      assert.match(text, /^INVALID_PARAMS: /, text);
      assert.match(text, /Hint: /);
      if (field) assert.match(text, new RegExp(`field: ${field}`), text);
      await stillWorks();
    }
  });

  test('unknown arguments are isError results naming the field and the nearest one', async () => {
    const { tools } = await conn.client.listTools();
    for (const tool of tools) {
      assert.equal(tool.inputSchema.additionalProperties, false, tool.name);
      const r = await conn.client.callTool({ name: tool.name, arguments: { no_such_argument: 1 } });
      assert.equal(r.isError, true, tool.name);
      assert.equal(r.structuredContent, undefined);
      const text = r.content[0].text;
      assert.match(text, /^INVALID_PARAMS: unknown field 'no_such_argument'/, text);
      assert.match(text, /\(field: no_such_argument\)/, text);
      assert.match(text, /Hint: /);
    }
    const cases = [
      ['shim_state_set', { key: 'k', value: 1, ttl: 5 }, "unknown field 'ttl'; did you mean 'ttl_ms'\\?", 'ttl'],
      ['shim_session_status', { sesion_id: 's' }, "did you mean 'session_id'\\?", 'sesion_id'],
      ['shim_task_submit', { tasks: [{ queue: 'q', priorty: 1 }] }, "did you mean 'tasks\\[0\\]\\.priority'\\?",
        'tasks\\[0\\]\\.priorty'],
      ['shim_task_fail', { task_id: 't1', lease_token: 1, error: 'e', claim_next: { queues: ['q'], maxx: 1 } },
        "did you mean 'claim_next\\.max'\\?", 'claim_next\\.maxx'],
    ];
    for (const [name, args, message, field] of cases) {
      const r = await conn.client.callTool({ name, arguments: args });
      assert.equal(r.isError, true, `${name} ${JSON.stringify(args)}`);
      const text = r.content[0].text;
      assert.match(text, new RegExp(message), text);
      assert.match(text, new RegExp(`field: ${field}\\)`), text);
    }
    // Nothing was written by the refused set.
    const got = await conn.client.callTool({ name: 'shim_state_get', arguments: { key: 'k' } });
    assert.equal(got.structuredContent.found, false);
    await stillWorks();
  });

  test('engine errors are isError with the reason and a hint', async () => {
    const r = await conn.client.callTool({ name: 'shim_session_status', arguments: { session_id: 'never-opened' } });
    assert.equal(r.isError, true);
    assert.match(r.content[0].text, /^NOT_FOUND: /);
    assert.match(r.content[0].text, /Hint: /);
    const lock = await conn.client.callTool({ name: 'shim_lock_release', arguments: { name: 'nolock', token: 99 } });
    assert.equal(lock.isError, true);
    await stillWorks();
  });

  test('a checkpoint over the size limit is isError TOO_LARGE', async () => {
    const big = 'x'.repeat((8 << 20) + 16);
    const r = await conn.client.callTool({ name: 'shim_force_checkpoint', arguments: { session_id: 'big', data: big } });
    assert.equal(r.isError, true);
    assert.match(r.content[0].text, /^TOO_LARGE: /);
    await stillWorks();
    const list = await conn.client.callTool({ name: 'shim_session_status', arguments: { session_id: 'big' } });
    assert.equal(list.structuredContent.checkpoints, 0);
  });

  test('a request line over --max-message-bytes is refused and the session goes on', async () => {
    // 17 MiB is over this server's 16 MiB line limit. The server's TOO_LARGE
    // error has id null (it never parsed the line), so the SDK cannot tie
    // it to the call: the call ends by its own timeout.
    const huge = 'y'.repeat(17 << 20);
    await assert.rejects(
      conn.client.callTool({ name: 'shim_state_set', arguments: { key: 'huge', value: huge } }, undefined, { timeout: 3000 }),
    );
    const r = await conn.client.callTool({ name: 'shim_state_get', arguments: { key: 'huge' } });
    assert.equal(r.structuredContent.found, false);
    await stillWorks();
  });
});
