// The processes these tests start through the MCP SDK get the test's
// sanitizer settings and SHIM_* switches (helpers.mjs, childEnv): the SDK
// passes only a few variables of its own to the `shim mcp` it spawns, so
// without the forwarding a sanitized `shim mcp`, and the daemon it starts,
// would run without the run's log_path and report to a stderr nobody
// checks (docs/fault-testing.md, "Sanitizers"). Checked where it counts:
// in /proc/PID/environ of both processes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { alive, connectClient, environOf, pidsWithArg, tempHome, waitUntil } from './helpers.mjs';

const SANITIZER_VARIABLES = ['ASAN_OPTIONS', 'LSAN_OPTIONS', 'UBSAN_OPTIONS', 'TSAN_OPTIONS'];

describe('the environment of shim mcp and of the daemon it starts', () => {
  let home;
  let daemonPid;
  const saved = {};

  before(() => {
    home = tempHome();
    // In a sanitized run (scripts/test-sanitized.sh) the variables are set
    // and checked as they are; the test sets those that are not (a run
    // without sanitizers: all of them) to a stand-in that every sanitizer
    // parses and that changes nothing, so that the check always runs.
    for (const name of [...SANITIZER_VARIABLES, 'SHIM_ENV_PROBE']) {
      saved[name] = process.env[name];
      if (process.env[name] === undefined) {
        process.env[name] = name === 'SHIM_ENV_PROBE' ? `probe-${process.pid}` : 'verbosity=0';
      }
    }
  });

  after(() => {
    if (daemonPid && alive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    home?.cleanup();
  });

  test('carries the sanitizer settings and SHIM_* variables to both', async () => {
    console.log(`sanitized run: ${process.env.SHIM_SANITIZER_RUN ?? 'no'}`);
    const conn = await connectClient(home, { name: 'environment' });
    try {
      const mcpPid = conn.transport.pid;
      assert.ok(mcpPid > 0, 'the transport knows the pid of shim mcp');
      const daemons = await waitUntil(() => {
        const pids = pidsWithArg(home.socket).filter((pid) => pid !== mcpPid && alive(pid) && isServe(pid));
        return pids.length ? pids : null;
      }, 10000, 'the daemon shim mcp started');
      assert.equal(daemons.length, 1, `one daemon: ${daemons}`);
      daemonPid = daemons[0];

      for (const [who, pid] of [['shim mcp', mcpPid], ['its daemon', daemonPid]]) {
        const env = environOf(pid);
        for (const name of [...SANITIZER_VARIABLES, 'SHIM_ENV_PROBE', 'SHIM_HOME']) {
          assert.equal(env[name], name === 'SHIM_HOME' ? home.dir : process.env[name], `${who} (pid ${pid}): ${name}`);
        }
      }
    } finally {
      await conn.client.close();
    }
    process.kill(daemonPid, 'SIGTERM');
    await waitUntil(() => !alive(daemonPid), 10000, 'the daemon to stop');
  });
});

function isServe(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('serve');
  } catch {
    return false;
  }
}
