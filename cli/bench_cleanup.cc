// `shim bench`: deleting what a run made on a server that also holds the
// user's data (cli/bench_run.h, BenchNames). Everything it deletes is named
// from the run's own pid, so nothing of anyone else's is touched.
#include <string>
#include <vector>

#include "cli/bench_run.h"
#include "cli/client_util.h"

namespace shim::cli::bench {

namespace {

constexpr int kCleanupTimeoutMs = 120'000;  // a deleted queue can hold a million tasks

// Deletes every key under `prefix`, a page (at most 1000, the txn limit) per
// state.txn; how many.
Result<int64_t> DeleteKeys(net::LineClient& client, const std::string& prefix) {
  int64_t deleted = 0;
  for (;;) {
    SHIM_ASSIGN_OR_RETURN(
        json page,
        client.Call("state.list", {{"prefix", prefix}, {"limit", 1000}}, kCleanupTimeoutMs));
    if (page["items"].empty()) return deleted;
    json ops = json::array();
    for (const json& item : page["items"]) ops.push_back({{"del", {{"key", item["key"]}}}});
    SHIM_ASSIGN_OR_RETURN(json r, client.Call("state.txn", {{"success", ops}}, kCleanupTimeoutMs));
    deleted += static_cast<int64_t>(ops.size());
  }
}

}  // namespace

Result<json> CleanUp(net::LineClient& client, const BenchNames& names) {
  json done = {{"tasks", 0}, {"keys", 0}, {"sessions", 0}};
  // The queue with every task in it; force: a run cut short may leave
  // tasks running.
  Result<json> queue =
      client.Call("queue.delete", {{"queue", names.name}, {"force", true}}, kCleanupTimeoutMs);
  if (queue.ok()) {
    done["tasks"] = (*queue)["removed"];
  } else if (queue.status().code() != StatusCode::kNotFound) {
    return queue.status();
  }
  SHIM_ASSIGN_OR_RETURN(int64_t keys, DeleteKeys(client, names.key_prefix));
  done["keys"] = keys;
  // Sessions: closed and cleared (checkpoints, signals, their keys); the
  // protocol keeps a closed session's record.
  SHIM_ASSIGN_OR_RETURN(json sessions, CallAllPages(client, "session.list", json::object(),
                                                    "sessions", kCleanupTimeoutMs));
  int64_t cleared = 0;
  for (const json& s : sessions["sessions"]) {
    const std::string id = s["session_id"];
    if (!id.starts_with(names.name + "-")) continue;
    if (s["state"] != "closed") {
      SHIM_ASSIGN_OR_RETURN(json c, client.Call("session.close", {{"session_id", id}}));
    }
    SHIM_ASSIGN_OR_RETURN(json c, client.Call("session.clear", {{"session_id", id}}));
    ++cleared;
  }
  done["sessions"] = cleared;
  // The protocol deletes no channel: the run's channels (the pubsub
  // workload's, the queue's events) keep no messages, by age. Only those
  // the run used: pubsub.configure would create the others.
  int64_t channels = 0;
  for (const std::string& channel : {names.name, "events." + names.name}) {
    SHIM_ASSIGN_OR_RETURN(
        json history,
        client.Call("pubsub.history", {{"channel", channel}, {"from_seq", 1}, {"limit", 1}}));
    if (history["messages"].empty()) continue;
    SHIM_ASSIGN_OR_RETURN(
        json c, client.Call("pubsub.configure", {{"channel", channel}, {"max_age_ms", 1}}));
    ++channels;
  }
  done["channels_emptied"] = channels;
  return done;
}

}  // namespace shim::cli::bench
