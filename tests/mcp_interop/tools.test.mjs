// Every tool called with valid arguments through `shim mcp`: the SDK
// validates structuredContent against the tool's outputSchema (it does so
// whenever a tool declares one); an explicit check of type/required and the
// text block repeat that independently. Ends with the tools/call round-trip
// time through the bridge.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connectClient, percentile, schemaErrors, startServer, tempHome } from './helpers.mjs';

describe('every tool with valid arguments', () => {
  let home;
  let server;
  let conn;
  let schemas;
  const called = new Set();

  before(async () => {
    home = tempHome();
    server = await startServer(home);
    conn = await connectClient(home);
    const { tools } = await conn.client.listTools();
    schemas = Object.fromEntries(tools.map((t) => [t.name, t.outputSchema]));
  });

  after(async () => {
    await conn?.client.close();
    await server?.stop();
    home?.cleanup();
  });

  // Calls a tool that must succeed; returns its structuredContent.
  async function call(name, args) {
    const r = await conn.client.callTool({ name, arguments: args });
    assert.equal(r.isError, false, `${name}: ${r.content?.[0]?.text}`);
    const out = r.structuredContent;
    assert.ok(out && typeof out === 'object' && !Array.isArray(out), `${name}: structuredContent is an object`);
    assert.deepEqual(schemaErrors(schemas[name], out), [], `${name}: ${JSON.stringify(out).slice(0, 300)}`);
    assert.equal(r.content[0].type, 'text');
    assert.deepEqual(JSON.parse(r.content[0].text), out, `${name}: the text block is the same content`);
    called.add(name);
    return out;
  }

  test('crash-prevention tools', async () => {
    const sid = 'tools-chat';
    const first = await call('shim_auto_checkpoint', {
      session_id: sid,
      signals: { tokens_used: 1000, context_window: 200000, messages: 2, tool_calls: 1, errors: 0, elapsed_ms: 5000 },
      data: { goal: 'test', step: 1 },
      label: 'start',
    });
    assert.equal(first.session_id, sid);
    assert.equal(first.saved, false);
    assert.equal(first.level, 'low');

    const risky = await call('shim_auto_checkpoint', {
      session_id: sid,
      signals: { tokens_used: 190000, context_window: 200000, errors: 8 },
      data: { goal: 'test', step: 2 },
    });
    assert.equal(risky.saved, true);
    assert.equal(risky.checkpoint_id, 1);
    assert.equal(risky.level, 'critical');

    const monitored = await call('shim_monitor_signals', { session_id: sid, signals: { messages: 300 } });
    assert.equal(monitored.level, 'medium');
    assert.equal(typeof monitored.risk, 'number');

    const forced = await call('shim_force_checkpoint', { session_id: sid, data: { goal: 'test', step: 3 }, label: 'now' });
    assert.equal(forced.saved, true);
    assert.equal(forced.checkpoint_id, 2);

    const status = await call('shim_session_status', { session_id: sid });
    assert.equal(status.state, 'open');
    assert.equal(status.checkpoints, 2);
    assert.equal(status.last_checkpoint.checkpoint_id, 2);
    assert.equal(status.recovery_available, false);

    const rec = await call('shim_check_recovery', { name: sid });
    assert.equal(rec.recovery_available, false);
    assert.equal(rec.reason, 'none');
    assert.deepEqual(rec.last_checkpoint.data, { goal: 'test', step: 3 });
    const byId = await call('shim_check_recovery', { session_id: sid, acknowledge: true });
    assert.equal(byId.session.session_id, sid);

    await call('shim_state_set', { key: `session/${sid}/notes`, value: 'scratch' });
    const cleared = await call('shim_clear_state', { session_id: sid });
    assert.equal(cleared.ok, true);
    assert.deepEqual(cleared.deleted, { checkpoints: 2, keys: 1 });
    const after = await call('shim_session_status', { session_id: sid });
    assert.equal(after.checkpoints, 0);
  });

  test('coordination tools', async () => {
    const absent = await call('shim_state_get', { key: 'plan' });
    assert.deepEqual(absent, { found: false, key: 'plan' });
    const set = await call('shim_state_set', { key: 'plan', value: { steps: ['a', 'b'] }, expected_version: 0 });
    assert.equal(set.version, 1);
    const got = await call('shim_state_get', { key: 'plan' });
    assert.equal(got.found, true);
    assert.deepEqual(got.value, { steps: ['a', 'b'] });
    assert.equal(got.version, 1);
    // A stale expected_version is an isError result, not a protocol error.
    const stale = await conn.client.callTool({ name: 'shim_state_set', arguments: { key: 'plan', value: 1, expected_version: 0 } });
    assert.equal(stale.isError, true);
    assert.match(stale.content[0].text, /^VERSION_CONFLICT/);

    const pub = await call('shim_publish', { channel: 'news', data: { hello: 'world' } });
    assert.equal(pub.seq, 1);
    await call('shim_publish', { channel: 'news', data: 2 });
    const msgs = await call('shim_read_messages', { channel: 'news', from_seq: 1, limit: 10 });
    assert.deepEqual(msgs.messages.map((m) => m.data), [{ hello: 'world' }, 2]);
    assert.equal(msgs.next_seq, 3);

    const lock = await call('shim_lock_acquire', { name: 'edit', owner: 'me', ttl_ms: 10000 });
    assert.ok(Number.isInteger(lock.token));
    const held = await conn.client.callTool({ name: 'shim_lock_acquire', arguments: { name: 'edit', owner: 'you', ttl_ms: 10000 } });
    assert.equal(held.isError, true);
    assert.match(held.content[0].text, /^LOCK_HELD/);
    assert.deepEqual(await call('shim_lock_release', { name: 'edit', token: lock.token }), { ok: true });

    const worker = await call('shim_worker_register', { name: 'w1', capabilities: ['text'], max_concurrency: 2 });
    assert.equal(typeof worker.worker_id, 'string');
    const one = await call('shim_task_submit', { queue: 'jobs', payload: { n: 1 }, priority: 2 });
    assert.equal(typeof one.task_id, 'string');
    const two = await call('shim_task_submit', { queue: 'jobs', payload: { n: 2 }, max_attempts: 1 });
    const claimed = await call('shim_task_claim', { queues: ['jobs'], worker_id: worker.worker_id, max: 2, wait_ms: 0 });
    assert.equal(claimed.tasks.length, 2);
    const [t1, t2] = claimed.tasks;
    assert.equal(t1.task_id, one.task_id); // priority 2 first
    assert.deepEqual(await call('shim_task_complete', { task_id: t1.task_id, lease_token: t1.lease_token, result: { ok: 1 } }), { ok: true });
    const failed = await call('shim_task_fail', { task_id: t2.task_id, lease_token: t2.lease_token, error: 'bad input', retry: false });
    assert.equal(failed.state, 'failed');
    const st1 = await call('shim_task_status', { task_id: one.task_id });
    assert.equal(st1.state, 'completed');
    assert.deepEqual(st1.result, { ok: 1 });
    assert.equal((await call('shim_task_status', { task_id: two.task_id })).state, 'failed');
    const stats = await call('shim_queue_stats', { queue: 'jobs' });
    assert.equal(stats.counts.completed, 1);

    // A worker chat finishing a task takes its next one in the same tool
    // call (claim_next), and learns when there is none left.
    const r1 = await call('shim_task_submit', { queue: 'relay', payload: { leg: 1 } });
    const r2 = await call('shim_task_submit', { queue: 'relay', payload: { leg: 2 } });
    const [leg1] = (await call('shim_task_claim', { queues: ['relay'], worker_id: worker.worker_id })).tasks;
    assert.equal(leg1.task_id, r1.task_id);
    const next = await call('shim_task_complete', {
      task_id: leg1.task_id, lease_token: leg1.lease_token, result: 'leg 1 done', claim_next: { queues: ['relay'] },
    });
    assert.equal(next.ok, true);
    assert.equal(next.tasks.length, 1);
    assert.equal(next.tasks[0].task_id, r2.task_id);
    assert.deepEqual(next.tasks[0].payload, { leg: 2 });
    const last = await call('shim_task_fail', {
      task_id: r2.task_id, lease_token: next.tasks[0].lease_token, error: 'no road', retry: false,
      claim_next: { queues: ['relay'] },
    });
    assert.equal(last.state, 'failed');
    assert.deepEqual(last.tasks, []);
    assert.equal(stats.counts.failed, 1);
    assert.equal(typeof stats.health.starving, 'boolean');
  });

  test('all 19 tools were called', () => {
    assert.deepEqual([...called].sort(), Object.keys(schemas).sort());
  });

  test('tools/call round trip through shim mcp', async (t) => {
    const n = 200;
    const times = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      const r = await conn.client.callTool({ name: 'shim_state_get', arguments: { key: 'plan' } });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      assert.equal(r.isError, false);
    }
    const line = `tools/call shim_state_get x${n}: p50 ${percentile(times, 50).toFixed(3)} ms, ` +
      `p99 ${percentile(times, 99).toFixed(3)} ms`;
    t.diagnostic(line);
    console.log(`# ${line}`);
    assert.ok(percentile(times, 50) < 250, line);
  });
});
