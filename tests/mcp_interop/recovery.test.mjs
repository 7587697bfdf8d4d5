// Crash recovery over MCP: a chat (its own process) checkpoints through
// `shim mcp` and is killed without closing its session; after the heartbeat
// TTL a second chat finds recovery_available and the last checkpoint via
// shim_check_recovery. Also: `shim mcp` starting the daemon by itself.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  RawClient, SHIM_BIN, alive, callTool, connectClient, pidsWithArg, startServer, tempHome, waitForSocket, waitUntil,
} from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('a crashed chat is recovered by the next one', () => {
  let home;
  let server;
  let chat;
  let observer;

  before(async () => {
    home = tempHome();
    server = await startServer(home);
  });

  after(async () => {
    if (chat && chat.exitCode === null && chat.signalCode === null) chat.kill('SIGKILL');
    await observer?.client.close();
    await server?.stop();
    home?.cleanup();
  });

  test('checkpoint, crash, lapse, recover', async () => {
    const sessionId = 'chat-A';
    const ttl = 1500;
    // checkpoint.auto opens sessions with a 60 s heartbeat TTL; a short one
    // needs session.open, here over the raw socket.
    const raw = await RawClient.connect(home.socket);
    const opened = await raw.call('session.open', { session_id: sessionId, name: 'report-chat', heartbeat_ttl_ms: ttl });
    raw.close();
    assert.equal(opened.recovery_available, false);

    chat = spawn(process.execPath, [path.join(here, 'fixtures', 'chat_client.mjs'), home.socket, home.data, sessionId], {
      env: { ...process.env, SHIM_BIN, SHIM_HOME: home.dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const firstLine = await new Promise((resolve, reject) => {
      const rl = readline.createInterface({ input: chat.stdout });
      rl.once('line', resolve);
      chat.once('exit', (code) => reject(new Error(`chat client exited early with ${code}`)));
    });
    const saved = JSON.parse(firstLine);
    assert.equal(saved.auto.saved, true, JSON.stringify(saved.auto));
    assert.equal(saved.auto.checkpoint_id, 1);
    assert.equal(saved.forced.saved, true);
    assert.equal(saved.forced.checkpoint_id, 2);

    observer = await connectClient(home, { name: 'next-chat' });
    assert.equal((await callTool(observer, 'shim_session_status', { session_id: sessionId })).state, 'open');

    // The chat host dies: no close, no goodbye. Its `shim mcp` sees EOF and ends.
    const killedAt = Date.now();
    chat.kill('SIGKILL');
    await waitUntil(() => !alive(saved.mcp_pid), 5000, 'shim mcp to end on EOF');

    const unclean = await waitUntil(async () => {
      const s = await callTool(observer, 'shim_session_status', { session_id: sessionId });
      return s.state === 'unclean' ? { ...s, seenAt: Date.now() } : null;
    }, 10000, 'the session to go unclean');
    // Not before its heartbeat TTL, counted from the last heartbeat the
    // server recorded (its wall clock, as Date.now(); 1 ms for rounding):
    // how late the chat's output or this poll came does not enter.
    const lastBeat = unclean.session.last_heartbeat_at_ms;
    assert.ok(Number.isInteger(lastBeat), JSON.stringify(unclean.session));
    assert.ok(unclean.seenAt >= lastBeat + ttl - 1,
      `unclean ${unclean.seenAt - lastBeat} ms after the last heartbeat, TTL ${ttl}`);
    assert.ok(unclean.seenAt - killedAt < ttl + 5000);
    assert.equal(unclean.recovery_available, true);

    const rec = await callTool(observer, 'shim_check_recovery', { name: 'report-chat' });
    assert.equal(rec.recovery_available, true);
    assert.equal(rec.reason, 'unclean_close');
    assert.equal(rec.session.session_id, sessionId);
    assert.equal(rec.last_checkpoint.checkpoint_id, 2);
    assert.equal(rec.last_checkpoint.label, 'before risky step');
    assert.equal(rec.last_checkpoint.reason, 'forced');
    assert.equal(rec.last_checkpoint.verified, true);
    assert.deepEqual(rec.last_checkpoint.data, { goal: 'write the report', step: 2, next: 'section 3' });

    const acked = await callTool(observer, 'shim_check_recovery', { session_id: sessionId, acknowledge: true });
    assert.equal(acked.recovery_available, true);
    const again = await callTool(observer, 'shim_check_recovery', { name: 'report-chat' });
    assert.equal(again.recovery_available, false);
    assert.equal(again.reason, 'none');
  });
});

describe('shim mcp starts the daemon when none answers', () => {
  let home;
  let daemonPid;

  before(() => {
    home = tempHome();
  });

  after(async () => {
    if (daemonPid && alive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
    home?.cleanup();
  });

  // The daemon `shim mcp` started for this test: found by its unique socket path.
  function daemonPids() {
    return pidsWithArg(home.socket).filter((pid) => {
      try {
        return alive(pid) && fsCmdline(pid).includes('serve');
      } catch {
        return false;
      }
    });
  }

  test('starts it, leaves it running, and a second bridge reuses it', async () => {
    assert.deepEqual(daemonPids(), []);
    const first = await connectClient(home, { name: 'first' });
    await callTool(first, 'shim_state_set', { key: 'k', value: 'v' });
    const pids = daemonPids();
    assert.equal(pids.length, 1, `one daemon: ${pids}`);
    daemonPid = pids[0];
    await first.client.close();

    // The daemon outlives the bridge; the next bridge connects to it.
    assert.ok(alive(daemonPid));
    await waitForSocket(home.socket, 2000);
    const second = await connectClient(home, { name: 'second' });
    assert.equal((await callTool(second, 'shim_state_get', { key: 'k' })).value, 'v');
    assert.deepEqual(daemonPids(), [daemonPid], 'no second daemon');
    await second.client.close();

    // Stop it by its PID; it shuts down cleanly on SIGTERM.
    process.kill(daemonPid, 'SIGTERM');
    await waitUntil(() => !alive(daemonPid), 10000, 'the daemon to stop');

    // With --no-start and no daemon, the bridge fails instead of starting one.
    await assert.rejects(connectClient(home, { name: 'no-start', args: ['--no-start'] }));
    assert.deepEqual(daemonPids(), []);
  });
});

function fsCmdline(pid) {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
}
