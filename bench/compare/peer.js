#!/usr/bin/env node
// The peer side of bench/compare (BullMQ + ioredis against a Redis on a Unix
// socket), plus a bulk filler for shim. Every command prints one JSON line.
//
//   node peer.js queue    --sock S --jobs N --concurrency C
//   node peer.js latency  --sock S --jobs N [--warmup W]
//   node peer.js pubsub   --sock S --messages N --subscribers K --payload B --window P
//   node peer.js fill-redis --sock S --jobs N            (BullMQ addBulk in chunks of 1000)
//   node peer.js fill-shim  --sock S --keys N --tasks N  (state.txn / task.submit_batch)
//   node peer.js ping-shim  --sock S                     (exit 0 once sys.ping answers)
'use strict';
const net = require('node:net');
const { performance } = require('node:perf_hooks');

function args() {
  const out = { _: process.argv[2] };
  const a = process.argv.slice(3);
  for (let i = 0; i < a.length; i += 2) out[a[i].replace(/^--/, '')] = a[i + 1];
  return out;
}
const A = args();
const num = (k, d) => (A[k] === undefined ? d : Number(A[k]));
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

function bull() {
  return require('bullmq');
}
function conn() {
  return { path: A.sock, maxRetriesPerRequest: null, enableOfflineQueue: true };
}
function qname(prefix) {
  return `${prefix}-${process.pid}-${Date.now()}`;
}
// A BullMQ queue of its own (named by qname, so runs never share keys), and
// the Worker class that drains it.
function freshQueue(prefix) {
  const { Queue, Worker } = bull();
  const name = qname(prefix);
  return { name, queue: new Queue(name, { connection: conn() }), Worker };
}

// Queue cycles: addBulk N no-op jobs, then a Worker (concurrency C) drains
// them; jobs/s = N / (time from worker start to the N-th 'completed').
async function queueCycles() {
  const N = num('jobs', 50000);
  const C = num('concurrency', 50);
  const { name, queue, Worker } = freshQueue('q');
  await queue.waitUntilReady();
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) jobs.push({ name: 'j', data: { i: j } });
    await queue.addBulk(jobs);
  }
  const addSecs = (performance.now() - t0) / 1000;
  let done = 0;
  let t1;
  const finished = new Promise((resolve) => {
    const worker = new Worker(name, async () => {}, { connection: conn(), concurrency: C, autorun: false });
    worker.on('completed', () => {
      if (++done === N) resolve(worker);
    });
    worker.on('error', (e) => console.error('worker error', e.message));
    worker.waitUntilReady().then(() => {
      t1 = performance.now();
      worker.run();
    });
  });
  const worker = await finished;
  const secs = (performance.now() - t1) / 1000;
  emit({ jobs: N, concurrency: C, add_per_sec: N / addSecs, jobs_per_sec: N / secs, seconds: secs });
  await worker.close();
  await queue.close();
}

// One job at a time: queue.add, then wait for the Worker's 'completed'
// event for that job (same process); latency = add call -> event.
async function latency() {
  const N = num('jobs', 2000);
  const W = num('warmup', 200);
  const { name, queue, Worker } = freshQueue('lat');
  const waiting = new Map();
  const worker = new Worker(name, async () => {}, { connection: conn(), concurrency: 1 });
  worker.on('completed', (job) => {
    const r = waiting.get(job.data.i);
    if (r) {
      waiting.delete(job.data.i);
      r();
    }
  });
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  const lat = [];
  for (let i = 0; i < N + W; i++) {
    const done = new Promise((resolve) => waiting.set(i, resolve));
    const t = performance.now();
    await queue.add('j', { i });
    await done;
    if (i >= W) lat.push((performance.now() - t) * 1000);
  }
  lat.sort((a, b) => a - b);
  emit({ jobs: N, p50_us: pct(lat, 0.5), p99_us: pct(lat, 0.99), max_us: lat[lat.length - 1] });
  await worker.close();
  await queue.close();
}

// Redis Pub/Sub: K subscribers, one publisher keeping P PUBLISHes in flight;
// delivered/s = K*N / (first publish -> last delivery).
async function pubsub() {
  const Redis = require('ioredis');
  const N = num('messages', 100000);
  const K = num('subscribers', 4);
  const B = num('payload', 100);
  const P = num('window', 16);
  const ch = qname('ch');
  const payload = 'x'.repeat(B);
  const subs = [];
  let delivered = 0;
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  for (let k = 0; k < K; k++) {
    const s = new Redis(conn());
    await s.subscribe(ch);
    s.on('messageBuffer', () => {
      if (++delivered === N * K) resolveAll();
    });
    subs.push(s);
  }
  const pub = new Redis(conn());
  await pub.ping();
  const t0 = performance.now();
  let sent = 0;
  let inflight = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (inflight < P && sent < N) {
        inflight++;
        sent++;
        pub.publish(ch, payload).then(() => {
          inflight--;
          if (sent === N && inflight === 0) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  await all;
  const secs = (performance.now() - t0) / 1000;
  emit({ messages: N, subscribers: K, delivered, delivered_per_sec: delivered / secs, seconds: secs });
  pub.disconnect();
  subs.forEach((s) => s.disconnect());
}

// Fills Redis with N waiting BullMQ jobs (addBulk, chunks of 1000) and
// reports INFO memory.
async function fillRedis() {
  const { Queue } = bull();
  const Redis = require('ioredis');
  const N = num('jobs', 1000000);
  const queue = new Queue('fill', { connection: conn() });
  await queue.waitUntilReady();
  const t0 = performance.now();
  const inflight = [];
  for (let i = 0; i < N; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) jobs.push({ name: 'j', data: { i: j } });
    inflight.push(queue.addBulk(jobs));
    if (inflight.length >= 4) await inflight.shift();
  }
  await Promise.all(inflight);
  const secs = (performance.now() - t0) / 1000;
  const r = new Redis(conn());
  const info = await r.info('memory');
  const field = (k) => Number((info.match(new RegExp(`^${k}:(\\d+)`, 'm')) || [])[1]);
  emit({ jobs: N, seconds: secs, waiting: await queue.getWaitingCount(), used_memory: field('used_memory'),
         used_memory_rss: field('used_memory_rss') });
  r.disconnect();
  await queue.close();
}

// A minimal pipelined JSON-RPC line client for shim.
function shimClient(path) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path);
    let buf = '';
    let nextId = 1;
    const pending = new Map();
    sock.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = JSON.parse(line);
        const p = pending.get(m.id);
        if (!p) continue;
        pending.delete(m.id);
        if (m.error) p.reject(new Error(JSON.stringify(m.error)));
        else p.resolve(m.result);
      }
    });
    sock.on('error', reject);
    sock.on('connect', () =>
      resolve({
        call(method, params) {
          const id = nextId++;
          sock.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
          return new Promise((res, rej) => pending.set(id, { resolve: res, reject: rej }));
        },
        close() {
          sock.end();
        },
      }),
    );
  });
}

async function pipelined(total, chunk, window, make) {
  const inflight = [];
  for (let i = 0; i < total; i += chunk) {
    inflight.push(make(i, Math.min(total, i + chunk)));
    if (inflight.length >= window) await inflight.shift();
  }
  await Promise.all(inflight);
}

async function fillShim() {
  const c = await shimClient(A.sock);
  const K = num('keys', 1000000);
  const T = num('tasks', 1000000);
  const out = { keys: K, tasks: T };
  let t0 = performance.now();
  await pipelined(T, 1000, 4, (a, b) => {
    const tasks = [];
    for (let i = a; i < b; i++) tasks.push({ queue: 'fill', payload: { i } });
    return c.call('task.submit_batch', { tasks });
  });
  out.tasks_seconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await pipelined(K, 1000, 4, (a, b) => {
    const success = [];
    for (let i = a; i < b; i++) success.push({ set: { key: `fill/${i}`, value: { i } } });
    return c.call('state.txn', { compare: [], success });
  });
  out.keys_seconds = (performance.now() - t0) / 1000;
  const st = await c.call('queue.stats', { queue: 'fill' });
  out.ready = st.counts.ready;
  emit(out);
  c.close();
}

async function pingShim() {
  const c = await shimClient(A.sock);
  await c.call('sys.ping', {});
  c.close();
}

const commands = { queue: queueCycles, latency, pubsub, 'fill-redis': fillRedis, 'fill-shim': fillShim,
                   'ping-shim': pingShim };
if (!commands[A._]) {
  console.error(`usage: node peer.js ${Object.keys(commands).join('|')} --sock PATH ...`);
  process.exit(2);
}
commands[A._]().then(
  () => process.exit(0),
  (e) => {
    console.error(`peer.js ${A._}: ${e.stack || e}`);
    process.exit(1);
  },
);
