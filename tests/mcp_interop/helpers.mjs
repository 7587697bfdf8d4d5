// Shared helpers for the MCP interop tests: a temp SHIM_HOME per test, a
// `shim serve` daemon on a unique socket, MCP SDK clients that launch
// `shim mcp` over stdio, a raw JSON-RPC line client for the socket, and a
// small JSON-schema check of structured results.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

export const SHIM_BIN = process.env.SHIM_BIN;
if (!SHIM_BIN || !fs.existsSync(SHIM_BIN)) {
  throw new Error(`SHIM_BIN must name the shim binary (got ${JSON.stringify(SHIM_BIN)})`);
}

// What every process a test starts gets from the test's environment:
// the sanitizer settings of a sanitized run (scripts/test-sanitized.sh sets
// them, log_path included, so that every process reports into the
// directory the run checks) and the SHIM_* switches. Spawning with
// process.env passes them anyway; the MCP SDK's StdioClientTransport does
// not (it passes HOME, PATH, ... and its `env`), so `shim mcp`, and the
// daemon it starts, get them through childEnv().
export const FORWARDED_ENV = /^(?:ASAN|LSAN|UBSAN|TSAN)_OPTIONS$|^SHIM_/;

export function childEnv(extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (FORWARDED_ENV.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

// The environment of a live process, from /proc/PID/environ.
export function environOf(pid) {
  const env = {};
  for (const entry of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

// A fresh SHIM_HOME with a short socket path; removed by cleanup().
export function tempHome() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-mcp-'));
  return {
    dir,
    socket: path.join(dir, 's.sock'),
    data: path.join(dir, 'data'),
    env: { SHIM_HOME: dir },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function canConnect(socket) {
  return new Promise((resolve) => {
    const c = net.createConnection(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function waitForSocket(socket, ms = 15000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await canConnect(socket)) return;
    await sleep(25);
  }
  throw new Error(`nothing answers on ${socket} after ${ms} ms`);
}

// Starts `shim serve` on the home's socket and data dir; resolves once the
// socket answers. stop() sends SIGTERM (SIGKILL after 5 s) and waits.
export async function startServer(home, extraArgs = []) {
  const log = fs.openSync(path.join(home.dir, 'serve.log'), 'a');
  const proc = spawn(SHIM_BIN, ['serve', '--socket', home.socket, '--data', home.data, ...extraArgs], {
    env: { ...process.env, ...home.env },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const early = exited.then((e) => {
    throw new Error(`shim serve exited early (${JSON.stringify(e)}): ${readLog(home, 'serve.log')}`);
  });
  await Promise.race([waitForSocket(home.socket), early]);
  early.catch(() => {});
  return {
    proc,
    pid: proc.pid,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
  };
}

export function readLog(home, name) {
  try {
    return fs.readFileSync(path.join(home.dir, name), 'utf8').slice(-4000);
  } catch {
    return '';
  }
}

// An MCP SDK client talking to `shim mcp` over stdio. `seen` collects every
// message the client received (to check what initialize negotiated).
export async function connectClient(home, { name = 'interop-test', args = [] } = {}) {
  const transport = new StdioClientTransport({
    command: SHIM_BIN,
    args: ['mcp', '--socket', home.socket, '--data', home.data, ...args],
    env: childEnv(home.env),
    stderr: 'pipe',
  });
  const seen = [];
  let inner;
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    get() {
      return inner && ((m, extra) => {
        seen.push(m);
        inner(m, extra);
      });
    },
    set(fn) {
      inner = fn;
    },
  });
  let stderr = '';
  transport.stderr?.on('data', (d) => {
    stderr += d.toString();
  });
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  return { client, transport, seen, stderr: () => stderr };
}

// Calls tool `name` with `args` on a connectClient connection; the call must
// succeed. Returns its structured result.
export async function callTool(conn, name, args) {
  const r = await conn.client.callTool({ name, arguments: args });
  assert.equal(r.isError, false, `${name}: ${r.content?.[0]?.text}`);
  return r.structuredContent;
}

// A raw JSON-RPC 2.0 line client on the daemon's socket.
export class RawClient {
  static async connect(socket) {
    const c = new RawClient();
    await new Promise((resolve, reject) => {
      c.sock = net.createConnection(socket);
      c.sock.once('connect', resolve);
      c.sock.once('error', reject);
    });
    c.sock.setEncoding('utf8');
    c.sock.on('data', (d) => c.onData(d));
    return c;
  }

  constructor() {
    this.buf = '';
    this.nextId = 1;
    this.pending = new Map();
    this.lines = [];
  }

  onData(d) {
    this.buf += d;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const msg = JSON.parse(line);
      this.lines.push(msg);
      const p = this.pending.get(msg.id);
      if (p) {
        this.pending.delete(msg.id);
        p(msg);
      }
    }
  }

  // The full response object ({result} or {error}).
  send(method, params) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.sock.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  // The result, or throws with the error.
  async call(method, params) {
    const r = await this.send(method, params);
    if (r.error) throw Object.assign(new Error(`${method}: ${JSON.stringify(r.error)}`), { rpc: r.error });
    return r.result;
  }

  close() {
    this.sock.destroy();
  }
}

// PIDs of live processes whose command line contains `needle` (a unique
// temp path): how a test finds the daemon `shim mcp` started for it.
export function pidsWithArg(needle) {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.includes(needle))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

// True while `pid` runs (a zombie no longer counts: a daemon reparented to
// an init that does not reap would otherwise look alive forever).
export function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function waitUntil(pred, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

// A small explicit check of a value against the subset of JSON Schema the
// tool catalogue uses: type (one or a list), required, properties, items, enum.
export function schemaErrors(schema, value, at = '$') {
  const errors = [];
  if (!schema || typeof schema !== 'object') return errors;
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(value, t))) {
      errors.push(`${at}: ${JSON.stringify(value)?.slice(0, 80)} is not ${types.join('|')}`);
      return errors;
    }
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const r of schema.required ?? []) {
      if (!(r in value)) errors.push(`${at}: missing required ${r}`);
    }
    for (const [k, sub] of Object.entries(schema.properties ?? {})) {
      if (k in value) errors.push(...schemaErrors(sub, value[k], `${at}.${k}`));
    }
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((v, i) => errors.push(...schemaErrors(schema.items, v, `${at}[${i}]`)));
  }
  return errors;
}

function hasType(v, t) {
  switch (t) {
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    default:
      return true;
  }
}

export function percentile(samples, p) {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
