// Two MCP clients at once, each through its own `shim mcp`: a supervisor
// that plans work as tasks (refs, a dependency, a parent that concatenates
// its children's results) and a worker that registers, claims and completes
// them; the supervisor then reads the parent's result.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { callTool, connectClient, startServer, tempHome, waitUntil } from './helpers.mjs';

describe('supervisor and worker', () => {
  let home;
  let server;
  let supervisor;
  let worker;

  before(async () => {
    home = tempHome();
    server = await startServer(home);
    [supervisor, worker] = await Promise.all([
      connectClient(home, { name: 'supervisor' }),
      connectClient(home, { name: 'worker' }),
    ]);
  });

  after(async () => {
    await Promise.all([supervisor?.client.close(), worker?.client.close()]);
    await server?.stop();
    home?.cleanup();
  });

  test('a small plan runs to completion', async () => {
    const { worker_id: workerId } = await callTool(worker, 'shim_worker_register', {
      name: 'writer',
      capabilities: ['write'],
    });

    // The worker waits for work before there is any: the claim is served
    // server-side once the supervisor submits.
    const firstClaim = callTool(worker, 'shim_task_claim', { queues: ['plan'], worker_id: workerId, wait_ms: 10000 });

    const submitted = await callTool(supervisor, 'shim_task_submit', {
      tasks: [
        { queue: 'plan', ref: 'report', payload: { goal: 'report' }, aggregate: 'concatenate' },
        { queue: 'plan', ref: 'intro', parent_id: 'report', payload: { section: 'intro' }, requires: ['write'] },
        { queue: 'plan', ref: 'body', parent_id: 'report', depends_on: ['intro'], payload: { section: 'body' } },
        { queue: 'plan', ref: 'outro', parent_id: 'report', depends_on: ['body'], payload: { section: 'outro' } },
      ],
    });
    assert.equal(submitted.task_ids.length, 4);
    const [parentId, ...childIds] = submitted.task_ids;

    const parentBefore = await callTool(supervisor, 'shim_task_status', { task_id: parentId });
    assert.notEqual(parentBefore.state, 'completed');

    // The worker does the sections one at a time, as the dependencies allow.
    const done = [];
    let claim = await firstClaim;
    for (;;) {
      assert.equal(claim.tasks.length, 1, JSON.stringify(claim));
      const task = claim.tasks[0];
      assert.notEqual(task.task_id, parentId, 'the parent is never handed out');
      const section = task.payload.section;
      assert.deepEqual(
        await callTool(worker, 'shim_task_complete', {
          task_id: task.task_id,
          lease_token: task.lease_token,
          result: { section, text: `${section} written` },
        }),
        { ok: true },
      );
      done.push(task.task_id);
      if (done.length === 3) break;
      claim = await callTool(worker, 'shim_task_claim', { queues: ['plan'], worker_id: workerId, wait_ms: 10000 });
    }
    assert.deepEqual(done, childIds, 'in dependency order');

    // The parent completes by itself with its children's results in child order.
    const parent = await waitUntil(async () => {
      const s = await callTool(supervisor, 'shim_task_status', { task_id: parentId });
      return s.state === 'completed' ? s : null;
    }, 5000, 'the parent to complete');
    assert.deepEqual(parent.result, [
      { section: 'intro', text: 'intro written' },
      { section: 'body', text: 'body written' },
      { section: 'outro', text: 'outro written' },
    ]);

    const stats = await callTool(supervisor, 'shim_queue_stats', { queue: 'plan' });
    assert.equal(stats.counts.completed, 4);
    assert.equal(stats.counts.ready, 0);

    // Nothing left for the worker.
    const empty = await callTool(worker, 'shim_task_claim', { queues: ['plan'], worker_id: workerId, wait_ms: 0 });
    assert.deepEqual(empty.tasks, []);
  });

  test('both chats share state and messages', async () => {
    await callTool(supervisor, 'shim_state_set', { key: 'project/status', value: 'drafting' });
    const seen = await callTool(worker, 'shim_state_get', { key: 'project/status' });
    assert.equal(seen.value, 'drafting');
    await callTool(worker, 'shim_publish', { channel: 'team', data: { from: 'worker', text: 'done' } });
    const msgs = await callTool(supervisor, 'shim_read_messages', { channel: 'team' });
    assert.deepEqual(msgs.messages.map((m) => m.data.from), ['worker']);
  });
});
