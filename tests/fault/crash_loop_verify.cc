// The crash loop's checks after each restart (tests/fault/crash_loop.h): the
// recovered server, read while every client is parked, against the ledger
// of what was acknowledged. Each check reads what it needs in one pipelined
// round trip where it can; each adopts what it found as the new truth for
// facts that were in doubt.
#include <algorithm>
#include <thread>

#include "tests/fault/crash_loop.h"
#include "tests/support/test_util.h"

namespace shim::fault {

using nlohmann::json;

namespace {

int64_t Ms(SteadyClock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// j if it is an object, else an empty one: what a failed read gives the
// checks, so that they report what is missing instead of throwing.
const json& Obj(const json& j) {
  static const json empty = json::object();
  return j.is_object() ? j : empty;
}

// Pipelined reads: one round trip for all of them. A read of something
// acknowledged must not fail (a failed one reads as null); a broken
// connection is the harness's failure.
std::vector<json> ReadAll(Tally& tally, net::LineClient& c,
                          const std::vector<std::pair<std::string, json>>& calls) {
  std::vector<json> out(calls.size());
  for (size_t start = 0; start < calls.size(); start += 500) {
    const size_t end = std::min(calls.size(), start + 500);
    std::vector<uint64_t> ids;
    for (size_t i = start; i < end; ++i) {
      auto id = c.SendRequest(calls[i].first, calls[i].second);
      EXPECT_TRUE(id.ok()) << id.status().ToString();
      ids.push_back(id.ok() ? *id : 0);
    }
    for (size_t i = start; i < end; ++i) {
      auto env = c.ReadResponse(ids[i - start], kCallTimeoutMs);
      EXPECT_TRUE(env.ok()) << calls[i].first << ": " << env.status().ToString();
      if (!env.ok()) continue;
      auto r = net::LineClient::Unwrap(*env);
      tally.Expect(r.ok(), "reads of acknowledged objects succeed",
                   calls[i].first + " " + calls[i].second.dump() + ": " + r.status().ToString());
      if (r.ok()) out[i] = std::move(r).value();
    }
  }
  return out;
}

json Read(Tally& tally, net::LineClient& c, const std::string& method, const json& params) {
  return ReadAll(tally, c, {{method, params}})[0];
}

// A batch's end states once every cascade has run (dependents of a failed
// task failed, parents of failed children failed, ...): each check and
// whether it holds. `t`: the tasks by DagBatch role.
std::vector<std::pair<std::string, bool>> BatchEndStates(const DagBatch& batch,
                                                         const std::vector<const json*>& t) {
  auto state = [&](int role) { return t[role]->value("state", ""); };
  const std::string a = state(DagBatch::kA), b = state(DagBatch::kB), p = state(DagBatch::kP);
  const std::string k1 = state(DagBatch::kK1), k2 = state(DagBatch::kK2);
  std::vector<std::pair<std::string, bool>> out;
  if (a == "failed" || a == "cancelled") {
    out.emplace_back("a failed dependency fails its dependents", b == "failed" || b == "cancelled");
    if (batch.k2_depends)
      out.emplace_back("a failed dependency fails its dependents",
                       k2 == "failed" || k2 == "cancelled");
  }
  if (a == "completed")
    out.emplace_back("a completed dependency releases its dependents", b != "waiting");
  if (k1 == "failed" || k1 == "cancelled" || k2 == "failed" || k2 == "cancelled") {
    out.emplace_back("a failed child fails its parent", p == "failed");
  }
  if (k1 == "completed" && k2 == "completed" && p != "failed") {
    out.emplace_back("a parent completes when its children have", p == "completed");
  }
  if (p == "failed") {
    // Its unfinished children were cancelled; one retried since (task.retry
    // of a child we failed) may run again, but none waits.
    out.emplace_back("a failed parent cancels its waiting children",
                     k1 != "waiting" && k2 != "waiting");
  }
  return out;
}

}  // namespace

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string KeyState::Describe() const {
  return exists ? "v" + std::to_string(version) + " " + Show(value) : "absent";
}

KeyState KeyState::FromGet(const json& result) {
  if (result.is_null()) return KeyState{};
  return KeyState{true, U64(result, "version"), result.value("value", json())};
}

void Ledger::Revision(const json& result) {
  if (auto it = result.find("revision"); it != result.end() && it->is_number_unsigned()) {
    max_revision = std::max(max_revision, it->get<uint64_t>());
  }
}

std::optional<TtlWrite> CheckTtlRead(Tally& tally, const std::string& key, const TtlKey& ledger,
                                     const json& result, int64_t get_sent_ms,
                                     int64_t get_acked_ms) {
  // Expired for sure before the read began; alive for sure until it ended.
  auto expired = [&](const TtlWrite& w) {
    return get_sent_ms > w.acked_ms + w.ttl_ms + kClockSlackMs;
  };
  auto alive = [&](const TtlWrite& w) {
    return get_acked_ms + kClockSlackMs < w.sent_ms + w.ttl_ms;
  };
  if (result.is_null()) {
    const bool wrong =
        ledger.acked && alive(*ledger.acked) && (!ledger.lost || alive(*ledger.lost));
    tally.Expect(
        !wrong, "TTL keys live until their TTL, across restarts",
        key + " is gone " +
            std::to_string(
                ledger.acked ? ledger.acked->sent_ms + ledger.acked->ttl_ms - get_acked_ms : 0) +
            " ms before its TTL ran out");
    return std::nullopt;
  }
  const int64_t n = Obj(result.value("value", json::object())).value("n", int64_t{-1});
  const TtlWrite* match = ledger.acked && ledger.acked->n == n ? &*ledger.acked
                          : ledger.lost && ledger.lost->n == n ? &*ledger.lost
                                                               : nullptr;
  if (!tally.Expect(match != nullptr, "TTL keys hold an acked or in-doubt write",
                    key + ": " + Show(result))) {
    return std::nullopt;
  }
  tally.Expect(!expired(*match), "expired TTL keys never come back",
               key + " = " + Show(result) + " read " +
                   std::to_string(get_sent_ms - match->acked_ms - match->ttl_ms) +
                   " ms after its TTL ran out");
  const int64_t at = result.value("expires_at_ms", int64_t{0});
  tally.Expect(at >= match->sent_ms + match->ttl_ms - kClockSlackMs &&
                   at <= match->acked_ms + match->ttl_ms + kClockSlackMs,
               "TTL keys keep their expiry across restarts",
               key + ": expires_at_ms " + std::to_string(at) + ", set at " +
                   std::to_string(match->sent_ms) + ".." + std::to_string(match->acked_ms) +
                   " with ttl " + std::to_string(match->ttl_ms));
  return *match;
}

bool CrashLoop::CertainlyAlive(SteadyTime alive_until, int64_t ttl_ms, SteadyTime now) const {
  const RestartInfo& r = ledger_.restart;
  return Ms(alive_until - r.killed) > kLivenessSlackMs &&
         r.longest_between_ms + kLivenessSlackMs < ttl_ms &&
         Ms(now - r.started) + kLivenessSlackMs < ttl_ms;
}

void CrashLoop::Verify(bool full) {
  ASSERT_OK_AND_ASSIGN(auto c, server_.Connect());
  std::lock_guard<std::mutex> lock(ledger_.mu);
  const json info = Read(tally_, *c, "sys.info", json::object());
  const uint64_t revision = U64(info, "revision");
  tally_.Expect(
      revision >= ledger_.max_revision && revision >= restart_revision_, "revision never goes down",
      "sys.info revision " + std::to_string(revision) + " after the restart; replies had shown " +
          std::to_string(ledger_.max_revision) + ", the previous start " +
          std::to_string(restart_revision_));
  restart_revision_ = revision;
  ledger_.restart.revision = revision;
  // Leases, workers and sessions first: their liveness checks depend on how
  // long this server has been up.
  VerifyLeases(*c);
  VerifyWorkers(*c);
  VerifySessions(*c, full);
  VerifyOwnKeys(*c);
  VerifySharedKeys(*c);
  VerifyTtlKeys(*c);
  VerifyLocks(*c);
  for (auto& [name, ch] : ledger_.channels) VerifyChannel(*c, name, full);
  VerifyCheckpoints(*c, full);
  VerifyAutoCheckpoints(*c);
  VerifyTasks(*c, full);
  if (full) {
    VerifyTaskEvents(*c, kQueue);
    VerifyTaskEvents(*c, kDagQueue);
  }
}

void CrashLoop::VerifyOwnKeys(net::LineClient& c) {
  // Every client's keys in one pipelined read.
  std::vector<std::pair<std::string, json>> calls;
  std::map<int, std::vector<std::string>> keys;
  for (auto& [client, own] : ledger_.own) {
    for (const auto& [k, v] : own.acked) keys[client].push_back(k);
    for (const auto& [k, v] : own.if_lost) {
      if (!own.acked.count(k)) keys[client].push_back(k);
    }
    for (const std::string& k : keys[client]) calls.push_back({"state.get", {{"key", k}}});
  }
  const std::vector<json> got = ReadAll(tally_, c, calls);
  size_t next = 0;
  for (auto& [client, own] : ledger_.own) {
    std::map<std::string, KeyState> seen;
    bool as_acked = true, as_lost = !own.if_lost.empty();
    std::string story;
    for (const std::string& key : keys[client]) {
      const KeyState s = KeyState::FromGet(got[next++]);
      seen[key] = s;
      const KeyState& acked = own.acked[key];
      auto l = own.if_lost.find(key);
      const KeyState& lost = l != own.if_lost.end() ? l->second : acked;
      as_acked = as_acked && s == acked;
      as_lost = as_lost && s == lost;
      if (!(s == acked)) {
        story +=
            "\n      " + key + ": " + s.Describe() + ", acked " + acked.Describe() +
            (l != own.if_lost.end() ? ", or if the lost request landed " + lost.Describe() : "");
      }
    }
    tally_.Expect(as_acked || as_lost,
                  "own keys: the acked state, or it plus the lost request, exactly",
                  C(client) + ":" + story);
    if (as_lost && !as_acked) tally_.Note("lost own writes that landed");
    // The two keys one txn writes move together.
    const KeyState& x = seen[PairKey(client, 'x')];
    const KeyState& y = seen[PairKey(client, 'y')];
    tally_.Expect(x.exists == y.exists && x.version == y.version && x.value == y.value,
                  "txn pairs: both keys written, or neither",
                  C(client) + ": x " + x.Describe() + ", y " + y.Describe());
    own.acked = std::move(seen);
    own.if_lost.clear();
  }
}

void CrashLoop::VerifySharedKeys(net::LineClient& c) {
  std::vector<std::pair<std::string, json>> calls;
  for (int k = 0; k < kSharedKeys; ++k) calls.push_back({"state.get", {{"key", SharedKey(k)}}});
  for (const char* k : {kTransferA, kTransferB}) calls.push_back({"state.get", {{"key", k}}});
  for (int l = 0; l < kLocks; ++l) calls.push_back({"state.get", {{"key", FencedKey(l)}}});
  const std::vector<json> got = ReadAll(tally_, c, calls);
  for (int k = 0; k < kSharedKeys; ++k) {
    const std::string key = SharedKey(k);
    const json& g = got[k];
    const uint64_t v = g.is_null() ? 0 : U64(g, "version");
    tally_.Expect(v >= ledger_.shared_acked[key], "acked shared CAS present",
                  key + ": version " + std::to_string(v) + " < acked " +
                      std::to_string(ledger_.shared_acked[key]));
    if (v > 0)
      tally_.Expect(U64(g["value"], "v") == v, "values match their version", key + ": " + Show(g));
  }
  {
    const json& a = got[kSharedKeys];
    const json& b = got[kSharedKeys + 1];
    const int64_t av = a.is_null() ? 0 : a["value"].get<int64_t>(),
                  bv = b.is_null() ? 0 : b["value"].get<int64_t>();
    const uint64_t aver = a.is_null() ? 0 : U64(a, "version"),
                   bver = b.is_null() ? 0 : U64(b, "version");
    tally_.Expect(av + bv == 0 && aver == bver,
                  "txn transfers: the two keys sum to zero, at one version",
                  std::string(kTransferA) + " " + Show(a) + ", " + kTransferB + " " + Show(b));
    tally_.Expect(aver >= ledger_.transfer_acked, "acked txn transfers present",
                  std::string(kTransferA) + " at version " + std::to_string(aver) + " < acked " +
                      std::to_string(ledger_.transfer_acked));
  }
  for (int l = 0; l < kLocks; ++l) {
    const std::string key = FencedKey(l);
    const json& g = got[kSharedKeys + 2 + l];
    auto& writes = ledger_.fenced[key];
    if (!g.is_null()) {
      const uint64_t v = U64(g, "version");
      const json& value = g["value"];
      tally_.Expect(Obj(value).value("n", int64_t{-2}) == static_cast<int64_t>(v),
                    "no fenced write outside the lock protocol",
                    key + ": counter " + Show(value) + " at version " + std::to_string(v) +
                        " (a probe with a released token, or a lost update, landed)");
      auto [it, fresh] = writes.emplace(v, U64(value, "token"));
      tally_.Expect(it->second == U64(value, "token"), "one fenced write per version",
                    key + " version " + std::to_string(v) + ": " + Show(value) +
                        ", earlier token " + std::to_string(it->second));
      tally_.Expect(writes.rbegin()->first <= v, "acked fenced writes present",
                    key + ": at version " + std::to_string(v) + " but version " +
                        std::to_string(writes.rbegin()->first) + " was acknowledged or read");
    } else {
      tally_.Expect(writes.empty(), "acked fenced writes present", key + " is gone");
    }
    // Over every version seen so far; counted once per version.
    uint64_t last = 0, last_version = 0;
    bool ordered = true;
    for (const auto& [version, token] : writes) {
      if (token < last) {
        ordered =
            tally_.Expect(false, "fencing tokens of landed writes never go down",
                          key + ": version " + std::to_string(version) + " written with token " +
                              std::to_string(token) + " after version " +
                              std::to_string(last_version) + " with token " + std::to_string(last));
      }
      last = std::max(last, token);
      last_version = version;
    }
    size_t& counted = ledger_.fenced_counted[key];
    if (ordered && writes.size() > counted)
      tally_.Pass("fencing tokens of landed writes never go down", writes.size() - counted);
    counted = writes.size();
  }
}

void CrashLoop::VerifyTtlKeys(net::LineClient& c) {
  // One pipelined read: each key is read somewhere between `sent` and `acked`.
  std::vector<std::pair<std::string, json>> calls;
  for (const auto& [key, l] : ledger_.ttl) calls.push_back({"state.get", {{"key", key}}});
  const int64_t sent = WallMs();
  const std::vector<json> got = ReadAll(tally_, c, calls);
  const int64_t acked = WallMs();
  size_t i = 0;
  for (auto& [key, l] : ledger_.ttl) {
    if (l.lost) l.lost->acked_ms = ledger_.restart.killed_wall_ms;
    l.acked = CheckTtlRead(tally_, key, l, got[i++], sent, acked);
    l.lost.reset();
  }
}

void CrashLoop::VerifyLeases(net::LineClient& c) {
  const SteadyTime sent = SteadyClock::now();
  const json list = Read(tally_, c, "lease.list", json::object());
  std::set<uint64_t> live;
  for (const json& l : Obj(list).value("leases", json::array())) live.insert(U64(l, "lease_id"));
  std::vector<std::pair<std::string, json>> calls;
  for (const auto& [client, l] : ledger_.leases)
    calls.push_back({"state.get", {{"key", LeaseKeyName(client)}}});
  const std::vector<json> keys = ReadAll(tally_, c, calls);
  size_t i = 0;
  for (auto& [client, l] : ledger_.leases) {
    const json& key = keys[i++];
    // Over every lease ended so far; a pass is counted once per lease.
    bool none_back = true;
    for (uint64_t ended : l.ended) {
      if (live.count(ended)) {
        none_back = tally_.Expect(false, "ended leases never come back",
                                  C(client) + ": lease " + std::to_string(ended) +
                                      " ended (revoked or expired) but is listed");
      }
    }
    if (none_back && l.ended.size() > l.ended_counted)
      tally_.Pass("ended leases never come back", l.ended.size() - l.ended_counted);
    l.ended_counted = l.ended.size();
    // A key hangs on a live lease: the lease's end deletes it in the same write.
    if (!key.is_null()) {
      const uint64_t on = key.value("lease_id", uint64_t{0});
      tally_.Expect(live.count(on) == 1, "keys of an ended lease are gone",
                    LeaseKeyName(client) + " = " + Show(key) + " but its lease is not listed");
    }
    if (l.id == 0) continue;
    const bool present = live.count(l.id) == 1;
    if (!l.revoke_in_doubt && CertainlyAlive(l.alive_until, l.ttl_ms, sent)) {
      tally_.Expect(present, "live leases survive restarts with a full TTL",
                    C(client) + ": lease " + std::to_string(l.id) + " (ttl " +
                        std::to_string(l.ttl_ms) +
                        " ms) was alive at the kill and is gone after the restart");
    }
    if (!present) {
      l.ended.insert(l.id);
      l.id = 0;
      l.key_n.reset();
      l.key_in_doubt = l.revoke_in_doubt = false;
      continue;
    }
    l.revoke_in_doubt = false;
    // Its TTL started again at recovery, after this server was spawned.
    l.alive_until =
        std::max(l.alive_until, ledger_.restart.started + std::chrono::milliseconds(l.ttl_ms));
    if (l.key_n && !l.key_in_doubt) {
      const bool there = !key.is_null() && key.value("lease_id", uint64_t{0}) == l.id &&
                         Obj(key["value"]).value("n", int64_t{-1}) == *l.key_n;
      tally_.Expect(there, "keys set with a live lease stay",
                    LeaseKeyName(client) + " = " + Show(key) + ", acked n " +
                        std::to_string(*l.key_n) + " on lease " + std::to_string(l.id));
    }
    if (l.key_in_doubt) {
      // Adopt what landed.
      if (!key.is_null() && key.value("lease_id", uint64_t{0}) == l.id)
        l.key_n = Obj(key["value"]).value("n", int64_t{-1});
      l.key_in_doubt = false;
    }
  }
}

void CrashLoop::VerifyLocks(net::LineClient& c) {
  std::vector<std::pair<std::string, json>> calls;
  for (int l = 0; l < kLocks; ++l) calls.push_back({"lock.status", {{"name", LockName(l)}}});
  const std::vector<json> got = ReadAll(tally_, c, calls);
  for (int l = 0; l < kLocks; ++l) {
    const std::string name = LockName(l);
    const json& st = got[static_cast<size_t>(l)];
    if (!Obj(st).value("held", false)) continue;
    const uint64_t token = U64(st, "token");
    const auto& grants = ledger_.lock_grants[name];
    tally_.Expect(
        !ledger_.lock_released[name].count(token), "acked lock releases stay released",
        name + " is held with token " + std::to_string(token) + ", whose release was acknowledged");
    if (!grants.empty()) {
      tally_.Expect(token >= grants.rbegin()->first, "a held lock's token is its newest grant",
                    name + " is held with token " + std::to_string(token) + " but token " +
                        std::to_string(grants.rbegin()->first) + " was granted after it");
    }
    if (auto g = grants.find(token); g != grants.end()) {
      tally_.Expect(Obj(st).value("owner", "") == g->second, "a lock token has one owner",
                    name + " token " + std::to_string(token) + " held by " +
                        Obj(st).value("owner", "") + ", granted to " + g->second);
    }
  }
}

void CrashLoop::VerifyChannel(net::LineClient& c, const std::string& channel, bool full) {
  ChannelLedger& ch = ledger_.channels[channel];
  const uint64_t from = full ? 1 : ch.verified_upto + 1;
  if (full) ch.seen.clear();
  uint64_t expect = from;
  std::map<uint64_t, json> stored;
  for (int page = 0; page < 1'000'000; ++page) {
    const json h = Read(tally_, c, "pubsub.history",
                        {{"channel", channel}, {"from_seq", expect}, {"limit", 1000}});
    const json messages = Obj(h).value("messages", json::array());
    if (messages.empty()) break;
    for (const json& m : messages) {
      const uint64_t seq = U64(m, "seq");
      if (!tally_.Expect(seq == expect, "channel seqs have no gap",
                         channel + ": seq " + std::to_string(seq) + " where " +
                             std::to_string(expect) + " was due"))
        return;
      ++expect;
      const json& d = m["data"];
      stored.emplace(seq, d);
      const int client = Obj(d).value("c", -1);
      const int64_t n = Obj(d).value("n", int64_t{-1});
      tally_.Expect(
          client >= 0 && client < kCrashLoopClients && n >= 1 && n <= ledger_.published_n[client],
          "no message nobody sent", channel + ": " + Show(m));
      tally_.Expect(ch.seen.emplace(client, n).second, "no message stored twice",
                    channel + ": " + Show(m));
      if (auto a = ch.acked.find(seq); a != ch.acked.end()) {
        tally_.Expect(a->second == d, "acked publishes present with their data",
                      channel + " seq " + std::to_string(seq) + ": stored " + Show(d) + ", acked " +
                          Show(a->second));
      }
    }
  }
  const uint64_t last = expect - 1;
  for (auto a = ch.acked.lower_bound(from); a != ch.acked.end(); ++a) {
    if (!tally_.Expect(a->first <= last, "acked publishes present with their data",
                       channel + ": acked seq " + std::to_string(a->first) +
                           " lost; the log ends at " + std::to_string(last)))
      break;
  }
  // What a subscriber was pushed was durable: it is in the log, as pushed.
  for (auto d = ch.delivered.lower_bound(from); d != ch.delivered.end(); ++d) {
    auto s = stored.find(d->first);
    if (!tally_.Expect(s != stored.end() && s->second == d->second,
                       "messages pushed to subscribers are in the log",
                       channel + " seq " + std::to_string(d->first) + " was pushed as " +
                           Show(d->second) + "; the log has " +
                           (s == stored.end() ? "nothing" : Show(s->second))))
      break;
  }
  if (full) {
    tally_.Expect(last >= ch.verified_upto, "acked publishes present with their data",
                  channel + ": the log shrank to " + std::to_string(last) + " from " +
                      std::to_string(ch.verified_upto));
  }
  if (last > ch.own_last && channel != kSharedChannel && !ch.own_in_doubt) {
    tally_.Expect(false, "no message nobody sent",
                  channel + ": log ends at " + std::to_string(last) +
                      " but the last publish was acked at " + std::to_string(ch.own_last) +
                      " and none was lost");
  }
  ch.verified_upto = std::max(ch.verified_upto, last);
  ch.own_last = last;
  ch.own_in_doubt = false;
}

void CrashLoop::VerifyCheckpoints(net::LineClient& c, bool full) {
  // Every session's new checkpoints in one pipelined read.
  std::vector<std::pair<std::string, json>> calls;
  std::vector<std::pair<const std::string*, uint64_t>> which;
  for (auto& [session, acked] : ledger_.checkpoints) {
    for (auto it = acked.upper_bound(full ? 0 : ledger_.checkpoints_verified[session]);
         it != acked.end(); ++it) {
      calls.push_back({"checkpoint.get", {{"session_id", session}, {"checkpoint_id", it->first}}});
      which.emplace_back(&session, it->first);
    }
  }
  const std::vector<json> got = ReadAll(tally_, c, calls);
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& [session, id] = which[i];
    tally_.Expect(got[i].is_object() && got[i]["data"] == ledger_.checkpoints[*session][id] &&
                      got[i]["verified"] == true,
                  "acked checkpoints present with their data",
                  *session + " checkpoint " + std::to_string(id) + ": " + Show(got[i]));
  }
  for (auto& [session, acked] : ledger_.checkpoints) {
    if (!acked.empty()) ledger_.checkpoints_verified[session] = acked.rbegin()->first;
  }
}

void CrashLoop::VerifyAutoCheckpoints(net::LineClient& c) {
  std::vector<std::pair<std::string, json>> lists;
  for (const auto& [client, a] : ledger_.autos) {
    lists.push_back({"checkpoint.list", {{"session_id", AutoSessionId(client)}, {"limit", 1000}}});
  }
  const std::vector<json> listed = ReadAll(tally_, c, lists);
  std::vector<std::pair<std::string, json>> calls;
  std::vector<std::pair<int, uint64_t>> which;
  size_t i = 0;
  for (auto& [client, a] : ledger_.autos) {
    const std::string sid = AutoSessionId(client);
    const json& list = listed[i++];
    std::vector<uint64_t> ids;
    for (const json& m : Obj(list).value("checkpoints", json::array()))
      ids.push_back(U64(m, "checkpoint_id"));
    std::sort(ids.begin(), ids.end());
    // Ids count saves from 1 and a save's id is persisted with it, so the
    // session holds exactly the newest kAutoKeep ids up to the last save.
    const uint64_t n = ids.empty() ? 0 : ids.back();
    std::vector<uint64_t> want;
    for (uint64_t id = n > kAutoKeep ? n - kAutoKeep + 1 : 1; id <= n && n > 0; ++id)
      want.push_back(id);
    tally_.Expect(ids == want, "checkpoint retention keeps exactly the newest keep_checkpoints",
                  sid + ": " + Show(list));
    const uint64_t newest_acked = a.acked.empty() ? 0 : a.acked.rbegin()->first;
    tally_.Expect(n >= newest_acked && n <= a.verified_n + static_cast<uint64_t>(a.since),
                  "acked checkpoint.auto saves present, and no others",
                  sid + ": newest id " + std::to_string(n) + ", newest acked " +
                      std::to_string(newest_acked) + ", " + std::to_string(a.since) +
                      " saves since id " + std::to_string(a.verified_n));
    for (uint64_t id : ids) {
      if (!a.acked.count(id)) continue;
      calls.push_back({"checkpoint.get", {{"session_id", sid}, {"checkpoint_id", id}}});
      which.emplace_back(client, id);
    }
    a.verified_n = n;
    a.since = 0;
  }
  const std::vector<json> got = ReadAll(tally_, c, calls);
  for (size_t j = 0; j < got.size(); ++j) {
    const auto& [client, id] = which[j];
    tally_.Expect(
        got[j].is_object() && got[j]["data"] == ledger_.autos[client].acked[id],
        "acked checkpoints present with their data",
        AutoSessionId(client) + " checkpoint " + std::to_string(id) + ": " + Show(got[j]));
  }
  for (auto& [client, a] : ledger_.autos) {
    const uint64_t n = a.verified_n;
    a.acked.erase(a.acked.begin(), a.acked.lower_bound(n > kAutoKeep ? n - kAutoKeep + 1 : 1));
  }
}

void CrashLoop::VerifySessions(net::LineClient& c, bool full) {
  std::vector<std::string> sids;
  if (full) {
    for (const auto& [sid, s] : ledger_.sessions) sids.push_back(sid);
  } else {
    sids.assign(ledger_.dirty_sessions.begin(), ledger_.dirty_sessions.end());
  }
  std::vector<std::pair<std::string, json>> calls;
  for (const std::string& sid : sids) calls.push_back({"session.status", {{"session_id", sid}}});
  const SteadyTime sent = SteadyClock::now();
  const std::vector<json> got = ReadAll(tally_, c, calls);
  for (size_t i = 0; i < sids.size(); ++i) {
    AbandonedSession& s = ledger_.sessions[sids[i]];
    const std::string state = Obj(got[i]).value("state", "");
    const std::string what = sids[i] + ": " + Show(got[i]);
    if (s.closed && !s.close_in_doubt) {
      tally_.Expect(state == "closed", "acked session closes stay closed", what);
    } else if (!s.close_in_doubt) {
      tally_.Expect(state == "open" || state == "unclean",
                    "sessions nobody closed are open or unclean", what);
    }
    if (state == "closed") {
      s.closed = true;
      s.close_in_doubt = false;
    }
    if ((state == "open" || state == "unclean") && CertainlyAlive(s.alive_until, s.ttl_ms, sent)) {
      tally_.Expect(state == "open",
                    "sessions go unclean only after their heartbeat TTL, restarts included", what);
    }
    if (state == "open")
      s.alive_until =
          std::max(s.alive_until, ledger_.restart.started + std::chrono::milliseconds(s.ttl_ms));
    if (s.acked && !s.ack_in_doubt) {
      tally_.Expect(!Obj(got[i]).value("recovery_available", true) &&
                        Obj(got[i]).value("session", json::object()).value("recovery_acked", false),
                    "acked recoveries are not offered again", what);
    }
    if (full && state == "unclean" && s.checkpoint && !s.checkpoint_in_doubt && !s.acked &&
        !s.ack_in_doubt) {
      const json r = Read(tally_, c, "recovery.check", {{"session_id", sids[i]}});
      const json last = Obj(r).value("last_checkpoint", json(nullptr));
      tally_.Expect(Obj(r).value("recovery_available", false) && last.is_object() &&
                        last["data"] == *s.checkpoint,
                    "recovery offers the session's last acked checkpoint",
                    sids[i] + ": " + Show(r));
    }
    if (full && final_pass_ && !s.closed && !s.close_in_doubt) {
      // Settle() waited past every heartbeat TTL.
      tally_.Expect(state == "unclean", "sessions left alone go unclean", what);
    }
    // Settled: nothing can change it any more but a client, and no client will.
    if ((s.closed && !s.close_in_doubt) || (s.acked && !s.ack_in_doubt))
      ledger_.dirty_sessions.erase(sids[i]);
  }
}

void CrashLoop::VerifyWorkers(net::LineClient& c) {
  const SteadyTime sent = SteadyClock::now();
  const json list = Read(tally_, c, "worker.list", json::object());
  std::map<std::string, json> by_id;
  for (const json& w : Obj(list).value("workers", json::array()))
    by_id[w.value("worker_id", "")] = w;
  for (auto& [client, w] : ledger_.workers) {
    auto it = by_id.find(WorkerId(client));
    const bool present = it != by_id.end();
    if (w.in_doubt) {
      w.registered = present;
      w.in_doubt = false;
      if (present) w.max_concurrency = it->second.value("max_concurrency", int64_t{0});
      continue;
    }
    tally_.Expect(present == w.registered, "acked worker registrations and deregistrations present",
                  WorkerId(client) + (w.registered ? " was registered" : " was deregistered") +
                      " but is " + (present ? "listed: " + Show(it->second) : "not listed"));
    if (!present) continue;
    const json& rec = it->second;
    std::vector<std::string> caps = rec.value("capabilities", std::vector<std::string>{});
    std::sort(caps.begin(), caps.end());
    tally_.Expect(rec.value("max_concurrency", int64_t{0}) == w.max_concurrency &&
                      rec.value("active_tasks", int64_t{1 << 20}) <= w.max_concurrency &&
                      caps == std::vector<std::string>{"any", C(client)},
                  "workers recover as registered, within max_concurrency", Show(rec));
    const bool dead = rec.value("status", "") == "dead";
    if (CertainlyAlive(w.alive_until, kWorkerTtlMs, sent)) {
      tally_.Expect(!dead,
                    "workers are marked dead only after their heartbeat TTL, restarts included",
                    Show(rec));
    }
    if (!dead) {
      w.alive_until = std::max(w.alive_until,
                               ledger_.restart.started + std::chrono::milliseconds(kWorkerTtlMs));
    }
  }
}

void CrashLoop::VerifyTasks(net::LineClient& c, bool full) {
  std::set<std::string> ids;
  std::set<size_t> batches;
  if (full) {
    for (const auto& [id, t] : ledger_.tasks) ids.insert(id);
    for (size_t b = 0; b < ledger_.batches.size(); ++b) batches.insert(b);
  } else {
    ids = ledger_.dirty_tasks;
    batches = ledger_.dirty_batches;
  }
  for (size_t b : batches) {
    for (const std::string& id : ledger_.batches[b].ids) ids.insert(id);
  }
  ledger_.dirty_tasks.clear();
  ledger_.dirty_batches.clear();
  std::vector<std::pair<std::string, json>> calls;
  for (const std::string& id : ids) calls.push_back({"task.get", {{"task_id", id}}});
  const std::vector<json> got = ReadAll(tally_, c, calls);
  std::map<std::string, json> known;
  size_t i = 0;
  for (const std::string& id : ids) {
    const json& t = got[i++];
    if (!tally_.Expect(t.is_object(), "acked submits present", id + " is gone")) continue;
    known[id] = t;
    const TaskLedger& l = ledger_.tasks[id];
    const std::string state = t.value("state", "");
    const json attempts = t.value("attempts", json::array());
    // Every acked claim is an attempt in the task's history: its worker,
    // started while the claim was in flight; an acked fail left its error there.
    // One worker may fail and claim the same task again within the clock
    // slack, so a claim can match more than one attempt: it is enough that
    // one of them is it (each acked fail's error names its fail uniquely).
    for (const ClaimRecord& claim : l.claims) {
      std::vector<const json*> candidates;
      for (const json& a : attempts) {
        const int64_t started = a.value("started_at_ms", int64_t{0});
        if (a.value("worker_id", "") == claim.worker && started >= claim.sent_ms - kClockSlackMs &&
            started <= claim.acked_ms + kClockSlackMs) {
          candidates.push_back(&a);
        }
      }
      tally_.Expect(!candidates.empty(), "acked claims present in the task's attempts",
                    id + " claimed by " + claim.worker + " between " +
                        std::to_string(claim.sent_ms) + " and " + std::to_string(claim.acked_ms) +
                        ", attempts " + Show(attempts));
      if (candidates.empty()) continue;
      if (auto f = l.fail_errors.find(claim.token); f != l.fail_errors.end()) {
        const bool present = std::any_of(candidates.begin(), candidates.end(), [&](const json* a) {
          return a->value("error", "") == f->second;
        });
        tally_.Expect(present, "acked fails present with their error",
                      id + " attempts " + Show(attempts) + ", acked error " + f->second);
      }
    }
    if (!l.completes.empty()) {
      tally_.Expect(state == "completed" && t.value("result", json()) == l.result,
                    "acked completes present with their result",
                    id + " completed (acked) with " + Show(l.result) + " but is " + state + " " +
                        Show(t.value("result", json())));
      tally_.Expect(l.completes.size() == 1, "no task completed twice",
                    id + " had " + std::to_string(l.completes.size()) + " completes acknowledged");
      uint64_t newest_claim = 0;
      for (const ClaimRecord& claim : l.claims) newest_claim = std::max(newest_claim, claim.token);
      tally_.Expect(l.completes.front() >= newest_claim, "no complete with a stale lease token",
                    id + " completed with lease token " + std::to_string(l.completes.front()) +
                        " but a claim with token " + std::to_string(newest_claim) +
                        " was acknowledged");
    }
    if (l.expect_failed && !l.retry_in_doubt) {
      tally_.Expect(state == "failed", "acked final fails stay failed", id + " is " + state);
    }
  }
  VerifyBatches(c, full, known);
}

void CrashLoop::VerifyBatches(net::LineClient& c, bool full,
                              const std::map<std::string, json>& known) {
  (void)c;
  for (size_t b = 0; b < ledger_.batches.size(); ++b) {
    const DagBatch& batch = ledger_.batches[b];
    std::vector<const json*> t;
    for (const std::string& id : batch.ids) {
      auto it = known.find(id);
      t.push_back(it == known.end() ? nullptr : &it->second);
    }
    if (std::any_of(t.begin(), t.end(), [](const json* j) { return j == nullptr; })) continue;
    auto state = [&](int role) { return t[role]->value("state", ""); };
    auto ran = [&](int role) { return !t[role]->value("attempts", json::array()).empty(); };
    const std::string story = "batch " + std::to_string(b) + ": a " + batch.ids[0] + " " +
                              state(0) + ", b " + state(1) + ", p " + state(2) + ", k1 " +
                              state(3) + ", k2 " + state(4) +
                              (batch.k2_depends ? " (k2 depends on a)" : "");
    // Safe at any moment: completed is final, and nothing runs early.
    const bool a_done = state(DagBatch::kA) == "completed";
    tally_.Expect(!ran(DagBatch::kB) || a_done, "no task runs before its dependencies completed",
                  story);
    if (batch.k2_depends)
      tally_.Expect(!ran(DagBatch::kK2) || a_done, "no task runs before its dependencies completed",
                    story);
    tally_.Expect(!ran(DagBatch::kP), "aggregating parents are never handed out", story);
    if (state(DagBatch::kP) == "completed") {
      const json want = json::array(
          {t[DagBatch::kK1]->value("result", json()), t[DagBatch::kK2]->value("result", json())});
      tally_.Expect(state(DagBatch::kK1) == "completed" && state(DagBatch::kK2) == "completed" &&
                        t[DagBatch::kP]->value("result", json()) == want,
                    "a completed parent has its children's results, in order",
                    story + ": p result " + Show(t[DagBatch::kP]->value("result", json())));
    }
    if (!full || !final_pass_) continue;
    for (const auto& [check, ok] : BatchEndStates(batch, t)) tally_.Expect(ok, check, story);
  }
}

void CrashLoop::VerifyTaskEvents(net::LineClient& c, const std::string& queue) {
  std::map<std::string, int> completed_events;
  uint64_t from = 1;
  for (int page = 0; page < 1'000'000; ++page) {
    const json h = Read(tally_, c, "pubsub.history",
                        {{"channel", EventsChannel(queue)}, {"from_seq", from}, {"limit", 1000}});
    const json messages = Obj(h).value("messages", json::array());
    if (messages.empty()) break;
    for (const json& m : messages) {
      if (Obj(m["data"]).value("type", "") == "completed")
        ++completed_events[Obj(m["data"]).value("task_id", "")];
    }
    from = U64(h, "next_seq");
  }
  for (const auto& [id, n] : completed_events) {
    tally_.Expect(n == 1, "one `completed` event per completed task",
                  id + " has " + std::to_string(n) + " `completed` events");
  }
  for (const auto& [id, t] : ledger_.tasks) {
    if (t.queue != queue || t.completes.empty()) continue;
    tally_.Expect(completed_events.count(id) == 1, "one `completed` event per completed task",
                  id + " has no `completed` event");
  }
}

void CrashLoop::Settle(net::LineClient& c) {
  // Abandoned sessions go unclean one heartbeat TTL after this server
  // recovered them; cascades run in the commands that set them off (or in
  // slices right after). Poll until both have happened, up to 20 s.
  std::lock_guard<std::mutex> lock(ledger_.mu);
  std::vector<std::pair<std::string, json>> calls;
  for (const auto& [sid, s] : ledger_.sessions) {
    if (!s.closed && !s.close_in_doubt) calls.push_back({"session.status", {{"session_id", sid}}});
  }
  for (const DagBatch& b : ledger_.batches) {
    for (const std::string& id : b.ids) calls.push_back({"task.get", {{"task_id", id}}});
  }
  const size_t sessions = calls.size() - ledger_.batches.size() * DagBatch::kRoles;
  const SteadyTime deadline = SteadyClock::now() + std::chrono::seconds(20);
  for (int round = 0;; ++round) {
    const std::vector<json> got = ReadAll(tally_, c, calls);
    bool settled = true;
    for (size_t i = 0; i < sessions && settled; ++i)
      settled = Obj(got[i]).value("state", "") != "open";
    for (size_t b = 0; b < ledger_.batches.size() && settled; ++b) {
      std::vector<const json*> t;
      for (int role = 0; role < DagBatch::kRoles; ++role)
        t.push_back(&Obj(got[sessions + b * DagBatch::kRoles + role]));
      for (const auto& [check, ok] : BatchEndStates(ledger_.batches[b], t)) settled = settled && ok;
    }
    if (settled || SteadyClock::now() > deadline) {
      if (round > 0)
        tally_.Note("settle rounds before the final pass", static_cast<uint64_t>(round));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace shim::fault
