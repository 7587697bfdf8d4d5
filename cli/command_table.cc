// The rows of the `shim` command line (see command_table.h).
#include "cli/command_table.h"

#include "cli/commands.h"

namespace shim::cli {

const std::vector<OptionSpec>& Options() {
  static const std::vector<OptionSpec> options = {
      // Global: what a client command needs to reach its server.
      {"socket", "PATH", "server socket (default $SHIM_SOCKET, else $SHIM_HOME/shim.sock)", false,
       true},
      {"connect", "HOST:PORT", "use the server's TCP listener (shim serve --listen) instead", false,
       true},
      {"auth-token-file", "FILE",
       "with --connect: authenticate with the token in FILE (default $SHIM_AUTH_TOKEN); not "
       "needed on the Unix socket",
       false, true},
      {"auth-token", "TOKEN", "with --connect: the token itself (visible in ps; prefer the file)",
       false, true},
      {"json", "", "print the raw JSON result (for scripts)", false, true},
      {"timeout-ms", "N", "give up waiting for a reply after N ms (default 30000)", false, true},
      // Values (state set, pub, task submit, call).
      {"file", "FILE", "read the value from FILE instead of the command line (- : stdin)"},
      {"string", "", "store the text as a string, without reading it as JSON"},
      {"raw", "", "print a string value as its bare text, without JSON quotes"},
      {"all", "", "read every page, not only the first"},
      // Lists.
      {"limit", "N", "at most N items"},
      {"after", "KEY", "start after KEY (the `next` of the previous page)"},
      // state
      {"ttl-ms", "N", "the key expires N ms after this write"},
      {"expected-version", "N", "only if the key is at version N (0: only if it does not exist)"},
      // tail
      {"from", "SEQ", "first replay the stored messages from SEQ on (1: everything retained)"},
      {"count", "N", "exit after N messages"},
      // workers, worker run
      {"capability", "CAP", "only workers with capability CAP"},
      // task
      {"priority", "N", "1 (highest) .. 10, default 5"},
      {"delay-ms", "N", "run no earlier than N ms from now"},
      {"max-attempts", "N", "default 3"},
      {"depends-on", "IDS", "comma-separated task ids that must complete first"},
      {"requires", "CAPS", "comma-separated capabilities a worker must have"},
      {"idempotency-key", "K", "resubmitting with the same key returns the same task"},
      {"wait", "",
       "wait for the task to finish; print its result (exit 1 if it failed or was "
       "cancelled)"},
      {"state", "S", "only tasks in state S"},
      // queue delete
      {"force", "", "also while tasks run: their leases end and their workers are told to stop"},
      // worker run
      {"queue", "Q", "queue to serve (repeatable, or comma-separated)", true},
      {"name", "NAME", "worker name (default: worker-<pid>)"},
      {"worker-id", "ID", "stable id (default: assigned by the server)"},
      {"max-tasks", "N", "exit after N tasks (default: run until stopped)"},
      // mcp, serve
      {"data", "DIR", "store directory (default $SHIM_HOME/data)"},
      {"no-start", "", "do not start a server if none answers"},
      {"listen", "HOST:PORT",
       "also serve TCP, e.g. 127.0.0.1:7420 (port 0: any free port; sys.info shows it). "
       "Loopback only, unless an auth token is set: then any address, e.g. 0.0.0.0:7420"},
      {"auth-timeout-ms", "N", "a TCP connection must authenticate within N ms (default 5000)"},
      {"idle-timeout-ms", "N",
       "close connections with no traffic and no pending request for N ms (default 0 = never)"},
      {"partial-line-timeout-ms", "N",
       "a request line must be complete N ms after its first byte, else the connection is "
       "closed (default 30000; 0 = never)"},
      {"durability", "MODE",
       "sync - fsync before every acknowledgement (default); async - WAL written before ack, "
       "fsynced every 100 ms; none - no WAL, memory until flush (benchmarks only)"},
      {"log-level", "LEVEL", "trace|debug|info|warn|error|off (default info)"},
      {"log-file", "FILE",
       "log to FILE instead of stderr, rotated by size: at 10 MiB FILE becomes FILE.1 (for "
       "shim.log: shim.1.log), .1 becomes .2, ...; 3 old files are kept (40 MiB at most). The "
       "server `shim mcp` starts logs to $SHIM_HOME/shim.log"},
      {"max-message-bytes", "N", "longest request line (default 1048576)"},
      {"max-outbound-bytes", "N", "per-connection output buffer (default 8388608)"},
      {"max-reply-bytes", "N",
       "a list read (state.list, task.list, ...) ends its page once its items reach N bytes; the "
       "rest is on the next page (default 4194304; at most --max-outbound-bytes)"},
      {"max-held-reply-bytes", "N",
       "server-wide: while more than N bytes of replies wait for a commit to land, no further "
       "request is read (default 67108864)"},
      {"max-connections", "N", "concurrent connections (default 1024)"},
      {"risk-config", "FILE", "JSON overriding risk-model thresholds (docs/risk-model.md)"},
      // bench
      {"clients", "N",
       "concurrent connections, 1..10000: state and queue 50, lock 2, checkpoint 1 (not pubsub "
       "or --one-at-a-time)"},
      {"pipeline", "N",
       "state: requests written at once per connection, then their replies read (as "
       "redis-benchmark -P); pubsub: publishes in flight (default 1)"},
      {"duration", "S", "seconds to run (default 10)"},
      {"payload-bytes", "N", "value / payload / message / checkpoint size (default 100)"},
      {"subscribers", "N", "pubsub subscribers (default 4)"},
      {"keys", "N", "state key space (default 10000)"},
      {"op", "OP", "state operation: set|get|incr|cas|mixed (default mixed)"},
      {"fail-rate", "F", "queue: share of first attempts failed, 0..1 (default 0)"},
      {"spawn", "", "start a private `shim serve` on a temp dir for the run"},
      {"keep", "", "keep what the run made on a running server (default: deleted at the end)"},
      {"prefill", "", "queue: submit all --count tasks first (untimed), then time the draining"},
      {"one-at-a-time", "",
       "queue: one task in flight, latency = submit -> the submitter sees its completed event"},
  };
  return options;
}

const OptionSpec* FindOption(std::string_view name) {
  for (const OptionSpec& o : Options()) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

namespace {

constexpr std::string_view kServeHelp = R"(
Runs the shim server in the foreground: an embedded RocksDB store and a
JSON-RPC (one message per line) endpoint on a Unix socket, optionally also
on loopback TCP. Stop it with Ctrl-C, SIGTERM or `shim stop`; it finishes
the writes in flight and closes the store cleanly.

Environment: SHIM_HOME (default ~/.shim; a relative one is taken from the
current directory), SHIM_SOCKET, SHIM_AUTH_TOKEN (used when neither
--auth-token nor --auth-token-file is given).
Security: docs/threat-model.md.)";

constexpr std::string_view kStateHelp = R"(
VALUE is JSON if it parses as JSON, else a string: `shim state set n 5` stores
the number 5, `shim state set who alice` the string "alice". JSON past shim's
limits (nested over 512 levels, an integer beyond 64 bits) is a string too;
--string stores the text as a string whatever it looks like. VALUE "-" reads
the value from stdin, --file FILE from a file (one trailing newline dropped).
Put `--` before a VALUE that starts with "-": shim state set n -- -5.)";

constexpr std::string_view kBenchHelp = R"(
Workloads, with what "ops" and "latency" mean for each:
  state       --op set|get|incr|cas|mixed over --keys keys (mixed: 50% set,
              30% get, 10% incr, 10% cas, a set with a random expected
              version; its conflicts count as answered). ops: requests;
              latency: a request's batch written -> its reply
  pubsub      1 publisher, --subscribers N subscribers on one durable channel;
              --count messages are published, ops are deliveries (count x N),
              latency is publish -> delivery, sampled from 1 in 16 deliveries
  queue       a producer submits, --clients W workers claim, then complete each
              task claiming the next (claim_next): one round trip per task.
              Tasks carry priorities 1..10. ops: tasks completed; latency:
              submit -> complete (with a backlog, mostly the wait in it).
              --fail-rate F fails that share of first attempts; they are
              retried at once (max_attempts 3) and count once completed
              --prefill: submit all --count tasks first (untimed, reported
              as prefill tasks/s), then time only the workers draining them;
              without it the producer keeps a backlog of at most 2000 and
              its submits are part of the timed run
              --one-at-a-time: one task in flight, latency = submit -> the
              submitter sees its "completed" event (one waiting worker)
  lock        --clients N contend for one lock: acquire(wait) -> release.
              ops: acquire attempts; latency: acquire -> grant
  checkpoint  --clients N sessions saving --payload-bytes checkpoints, each
              fsynced. ops: saves; latency: save -> reply
The time starts once every connection is open (queue --prefill: once the
tasks are submitted; pubsub: once the subscribers are subscribed) and ends
at the last operation's reply (queue: the last completion; pubsub: the last
delivery; checkpoint: the last save, not the sessions' closing).
Each option is refused by the workloads it does not apply to.
Prints ops/s and latency p50/p90/p99/p99.9 (us), the durability, the op mix
and whether the server was spawned; --json for machines.

Against a running server a run uses names of its own only: keys under
bench/<pid>/, the queue and channel bench-<pid>, sessions bench-<pid>-<i>,
the lock bench-<pid>-lock. At the end it deletes them (queue.delete, the
keys, sessions closed and cleared, channel messages expired), unless --keep.
Ctrl-C ends the run early: it cleans up (with --spawn: stops the server and
removes its directory) and prints what was measured so far.)";

constexpr std::string_view kWorkerRunHelp = R"(
Runs as a worker: claims tasks from the queues and runs COMMAND once per task.
  stdin       the task payload as one line of JSON
  environment SHIM_TASK_ID, SHIM_TASK_ATTEMPT, SHIM_QUEUE, SHIM_WORKER_ID
  exit 0      task completed; stdout is the result (JSON if it parses within
              shim's limits, else text)
  exit 99     task failed, not worth retrying
  other exit  task failed; its retry policy (max_attempts, backoff) applies
While COMMAND runs the worker heartbeats and extends the task's lease; a
cancelled task's COMMAND gets SIGTERM. Ctrl-C stops the worker: the task in
hand is returned to its queue and the worker deregisters. Put `--` before
COMMAND when it has options of its own: shim worker run --queue q -- sh -c '...')";

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> commands = {
      {"serve",
       "",
       "run the server (embedded RocksDB store, Unix socket)",
       {{"data",
         "store directory (default $SHIM_HOME/data; a missing one is created 0700, one open to "
         "group/others is refused; one server per directory)"},
        {"socket",
         "Unix socket, mode 0600, in a private directory (default $SHIM_HOME/shim.sock; a missing "
         "directory is created 0700; one open to group/others is refused)"},
        "listen",
        {"auth-token-file",
         "TCP clients must first send sys.auth {\"token\": ...} with the token in FILE (first "
         "line; keep the file 0600)"},
        {"auth-token",
         "the same, token given inline (visible in ps; prefer the file or $SHIM_AUTH_TOKEN). "
         "Unix-socket clients never need it"},
        "auth-timeout-ms",
        "idle-timeout-ms",
        "partial-line-timeout-ms",
        "durability",
        "log-level",
        "log-file",
        "max-message-bytes",
        "max-outbound-bytes",
        "max-reply-bytes",
        "max-held-reply-bytes",
        "max-connections",
        "risk-config"},
       RunServe,
       kServeHelp,
       /*client=*/false},
      {"mcp",
       "",
       "MCP over stdio (starts the server if none is running)",
       {"data", "no-start"},
       RunMcp,
       R"(
Serves MCP over stdio by bridging to the shim daemon's socket. Starts the
daemon in the background (logging to $SHIM_HOME/shim.log, rotated at 10 MiB,
3 old files kept) if none answers, unless --no-start (or --connect: a TCP
server is never started); if it cannot start, says why at once (exit 3).
Add it to an MCP client, e.g.:
  claude mcp add shim -- shim mcp)"},
      {"stop",
       "",
       "stop the server (it finishes the writes in flight)",
       {{"wait",
         "return only once the server's socket is gone and its process has exited (bounded by "
         "--timeout-ms)"}},
       RunStop,
       R"(
Stops the server on the Unix socket as SIGTERM does: it stops accepting
connections, finishes the writes in flight, answers what it was asked and
closes its store. Only a client on the Unix socket may stop a server (over
--connect it is refused: FORBIDDEN). Exit 3 when no server runs there.)"},
      {"call",
       "METHOD [PARAMS_JSON]",
       "send one JSON-RPC request, print its result",
       {{"file", "read PARAMS_JSON from FILE (- : stdin)"}},
       RunCall,
       R"(
Sends one JSON-RPC request and prints its result as JSON, e.g.
  shim call state.set '{"key":"plan","value":{"step":1}}'
  shim call sys.stats
  echo '{"key":"plan"}' | shim call state.get -
PARAMS_JSON "-" reads them from stdin. See docs/protocol.md for every method.)"},
      {"state", "", "read and write versioned state", {}, nullptr, kStateHelp},
      {"state get", "KEY", "print the value of KEY", {"raw"}, RunState},
      {"state set",
       "KEY [VALUE]",
       "store VALUE under KEY",
       {"ttl-ms", "expected-version", "file", "string"},
       RunState,
       kStateHelp},
      {"state del", "KEY", "delete KEY", {"expected-version"}, RunState},
      {"state list",
       "[PREFIX]",
       "list keys (with PREFIX), one page or --all",
       {"limit", "after", "all"},
       RunState},
      {"pub",
       "CHANNEL [DATA]",
       "publish a message on a durable channel",
       {"file", "string"},
       RunPub,
       R"(
Publishes DATA (JSON if it parses, else a string) on CHANNEL's durable log
and prints the message's seq and how many subscribers it reached.)"},
      {"tail",
       "CHANNEL",
       "follow a channel (or glob pattern), replaying with --from",
       {"from", "count"},
       RunTail,
       R"(
Follows a channel, or every channel matching a glob pattern (*, ?, [...]),
printing each message as it is published. With --from, stored messages from
SEQ on are replayed first (--from 1: everything retained). If the server
drops this subscriber for reading too slowly, tail resubscribes from the
next seq, so nothing retained is missed.)"},
      {"info",
       "",
       "show what the server is and how it is doing",
       {},
       RunInfo,
       R"(
Shows the server's version, process id, log file, socket and TCP address,
data directory, durability, uptime, revision, connections, what it holds
(keys, channels, tasks, workers, sessions), commit figures and store size,
and whether it is read-only (after a storage failure it could not recover
from; a restart clears it).)"},
      {"lock", "", "who holds a lock, its fencing token and waiters"},
      {"lock status", "NAME", "who holds NAME, its fencing token, expiry and waiters", {}, RunLock},
      {"lock list", "", "every held (or awaited) lock", {}, RunLock},
      {"workers",
       "",
       "registered workers and their health",
       {"capability"},
       RunWorkers,
       R"(
Lists registered workers: status (idle, busy, dead), active tasks,
capabilities and the time since their last heartbeat.)"},
      {"leases", "", "live leases: id, owner, TTL and time left", {}, RunLeases},
      {"task", "", "submit and inspect tasks"},
      {"task submit",
       "QUEUE [PAYLOAD]",
       "submit one task (PAYLOAD: JSON, else a string)",
       {"file",
        "string",
        "priority",
        "delay-ms",
        "max-attempts",
        {"timeout-ms", "the task's execution lease, default 60000"},
        "depends-on",
        "requires",
        "idempotency-key",
        "wait"},
       RunTask},
      {"task get", "TASK_ID", "state, attempts, result or error", {}, RunTask},
      {"task list", "QUEUE", "the tasks of QUEUE, one page", {"state", "limit", "after"}, RunTask},
      {"task cancel", "TASK_ID", "cancel (a running worker is told)", {}, RunTask},
      {"task retry", "TASK_ID", "requeue a failed or cancelled task", {}, RunTask},
      {"queues",
       "",
       "task counts and health per queue",
       {},
       RunQueues,
       R"(
One line per queue: task counts by state, and health (starving: a ready task
waited longer than starvation_ms; saturated: too many ready tasks, or no live
worker can take them), with the reasons.)"},
      {"queue", "", "control one queue: pause, resume, stats, drain, delete"},
      {"queue pause", "QUEUE", "hand out nothing more from QUEUE (claims skip it)", {}, RunQueue},
      {"queue resume", "QUEUE", "hand out its tasks again", {}, RunQueue},
      {"queue stats",
       "QUEUE",
       "counts by state, workers, wait and run times, health",
       {},
       RunQueue},
      {"queue drain",
       "QUEUE",
       "remove its tasks that have not started; running ones go on",
       {},
       RunQueue},
      {"queue delete",
       "QUEUE",
       "remove the queue with all its tasks, settings and stats (refused while tasks run)",
       {"force"},
       RunQueue},
      {"worker", "", "run a command once per claimed task"},
      {"worker run",
       "COMMAND...",
       "run COMMAND once per claimed task (payload on stdin)",
       {"queue",
        "name",
        "worker-id",
        {"capability", "capability this worker has (repeatable, or comma-separated)"},
        "max-tasks"},
       RunWorker,
       kWorkerRunHelp},
      {"bench",
       "WORKLOAD",
       "load generator: state, pubsub, queue, lock, checkpoint",
       {"clients",
        "pipeline",
        {"count",
         "total operations. Default: run for --duration (state, lock, checkpoint); queue: 100000 "
         "tasks or --duration, whichever ends first; pubsub: 100000 messages"},
        "duration",
        "payload-bytes",
        "subscribers",
        "keys",
        "op",
        "fail-rate",
        "spawn",
        {"durability", "with --spawn: sync | async | none (default sync)"},
        "one-at-a-time",
        "prefill",
        "keep"},
       RunBench,
       kBenchHelp},
      {"help", "[COMMAND...]", "print a command's help", {}, RunHelp, {}, /*client=*/false},
      {"version", "", "print shim's version", {}, RunVersion, {}, /*client=*/false},
      {"completion",
       "SHELL",
       "print a shell completion script: bash or zsh",
       {},
       RunCompletion,
       R"(
  source <(shim completion bash)      # in ~/.bashrc
  source <(shim completion zsh)       # in ~/.zshrc)",
       /*client=*/false},
  };
  return commands;
}

}  // namespace shim::cli
