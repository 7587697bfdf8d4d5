// The crash loop's load (tests/fault/crash_loop.h): one Client per thread,
// each picking at random among the operations below, recording what was
// acknowledged in the ledger and checking every reply as it comes.
#include <algorithm>
#include <thread>

#include "tests/fault/crash_loop.h"

namespace shim::fault {

using nlohmann::json;

namespace {

int64_t BackoffMs(const json& backoff, int64_t attempt) {
  int64_t d = backoff.value("delay_ms", int64_t{0});
  if (backoff.value("type", "fixed") == "exponential")
    d <<= std::clamp<int64_t>(attempt - 1, 0, 20);
  if (const int64_t max = backoff.value("max_delay_ms", int64_t{0}); max > 0) d = std::min(d, max);
  return d;
}

}  // namespace

Client::Client(CrashLoop& loop, int id, uint32_t seed) : loop_(loop), id_(id), rng_(seed) {}

Outcome Client::Call(Load load, std::string_view method, const json& params,
                     std::initializer_list<StatusCode> allowed) {
  if (!conn_) return Outcome{};  // lost already: nothing is sent
  Outcome o = Invoke(*conn_, method, params, kCallTimeoutMs);
  if (o.lost()) {
    loop_.lost_ops_.fetch_add(1);
    loop_.tally_.Expect(o.status.code() != StatusCode::kTimeout, "server answers in time",
                        C(id_) + ": " + std::string(method) + " got no reply within " +
                            std::to_string(kCallTimeoutMs) + " ms while the server was up");
    conn_.reset();
    return o;
  }
  if (o.ok()) {
    loop_.acked_ops_.fetch_add(1);
    loop_.tally_.Acked(load);
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    loop_.ledger_.Revision(o.result);
    return o;
  }
  loop_.refused_ops_.fetch_add(1);
  loop_.tally_.Refused(load);
  const bool expected = std::find(allowed.begin(), allowed.end(), o.status.code()) != allowed.end();
  loop_.tally_.Expect(expected, "errors only from each operation's allow-list",
                      C(id_) + ": " + std::string(method) + " " + Show(params) + ": " +
                          o.status.ToString() + " " + o.status.details().dump());
  return o;
}

void Client::Run() {
  uint64_t generation = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(loop_.gate_.mu);
      loop_.gate_.cv.wait(lock,
                          [&] { return loop_.gate_.stop || loop_.gate_.generation != generation; });
      if (loop_.gate_.stop) return;
      generation = loop_.gate_.generation;
    }
    auto c = loop_.server_.Connect();
    if (c.ok()) {
      conn_ = std::move(c).value();
      OnConnect();
      while (conn_) Step();
    }
    std::lock_guard<std::mutex> lock(loop_.gate_.mu);
    ++loop_.gate_.parked;
    loop_.gate_.cv.notify_all();
  }
}

void Client::OnConnect() {
  // Subscriptions end with the connection: resume where the last one stopped.
  Subscribe(last_delivered_ + 1);
  RetryCompleteInDoubt();
  ResubmitBatchInDoubt();
  bool registered;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    registered = loop_.ledger_.workers[id_].registered;
  }
  if (!registered && worker_wanted_) WorkerOp();
}

void Client::Step() {
  DrainMessages();
  WorkerHeartbeatIfDue();
  if (!conn_) return;
  // The operations and their weights. Each client draws them from a
  // shuffled deck holding each operation `weight` times, so every kind gets
  // its share of however many steps a round allows (a sanitized server
  // allows few): rare kinds are not left to chance, and each clears its
  // minimum (crash_loop_tally.h).
  enum Op {
    kSet,
    kCas,
    kBadCas,
    kRead,
    kDel,
    kPatchMerge,
    kPatchOps,
    kIncrement,
    kPair,
    kPairWrong,
    kTransfer,
    kShared,
    kTtlWrite,
    kTtlGet,
    kLeaseKeep,
    kLeaseSetKey,
    kLeaseEnd,
    kPubOwn,
    kPubShared,
    kLock,
    kProbe,
    kSubmitTask,
    kSubmitDelayed,
    kBatch,
    kClaimTasks,
    kComplete,
    kCompleteNext,
    kFailRetry,
    kFailFinal,
    kExtend,
    kRetry,
    kWorker,
    kSave,
    kAuto,
    kSessionOpen,
    kSessionClose,
    kSessionRecover,
    kOps
  };
  static const int kWeights[kOps] = {7, 5, 2, 2, 3, 3, 3, 3, 3, 2, 3, 4, 3, 2, 3, 3, 2, 4, 4,
                                     6, 2, 4, 2, 3, 7, 6, 4, 3, 3, 2, 2, 2, 3, 3, 2, 2, 3};
  if (next_op_ == deck_.size()) {
    deck_.clear();
    for (int op = 0; op < kOps; ++op)
      deck_.insert(deck_.end(), static_cast<size_t>(kWeights[op]), op);
    std::shuffle(deck_.begin(), deck_.end(), rng_);
    next_op_ = 0;
  }
  switch (deck_[next_op_++]) {
    case kSet:
      return OwnWrite(Load::kOwnSet);
    case kCas:
      return OwnWrite(Load::kOwnCas);
    case kBadCas:
      return OwnBadCas();
    case kRead:
      return OwnRead();
    case kDel:
      return OwnWrite(Load::kOwnDel);
    case kPatchMerge:
      return OwnWrite(Load::kOwnPatchMerge);
    case kPatchOps:
      return OwnWrite(Load::kOwnPatchOps);
    case kIncrement:
      return Incr();
    case kPair:
      return PairTxn(false);
    case kPairWrong:
      return PairTxn(true);
    case kTransfer:
      return TransferTxn();
    case kShared:
      return SharedCas();
    case kTtlWrite:
      return TtlSet();
    case kTtlGet:
      return TtlRead();
    case kLeaseKeep:
      return LeaseOp(LeaseAction::kKeepalive);
    case kLeaseSetKey:
      return LeaseOp(LeaseAction::kSetKey);
    case kLeaseEnd:
      return LeaseOp(LeaseAction::kRevoke);
    case kPubOwn:
      return Publish(true);
    case kPubShared:
      return Publish(false);
    case kLock:
      return LockCycle();
    case kProbe:
      return StaleFenceProbe();
    case kSubmitTask:
      return Submit(false);
    case kSubmitDelayed:
      return Submit(true);
    case kBatch:
      return SubmitBatch();
    // Finish what is held before its lease lapses.
    case kClaimTasks:
      return held_.size() < 3 ? Claim() : Finish(FinishAction::kComplete);
    case kComplete:
      return Finish(FinishAction::kComplete);
    case kCompleteNext:
      return Finish(FinishAction::kCompleteClaimNext);
    case kFailRetry:
      return Finish(FinishAction::kFailRetry);
    case kFailFinal:
      return Finish(FinishAction::kFailFinal);
    case kExtend:
      return Finish(FinishAction::kExtend);
    case kRetry:
      return RetryFailed();
    case kWorker:
      return WorkerOp();
    case kSave:
      return SaveCheckpoint();
    case kAuto:
      return AutoCheckpoint();
    case kSessionOpen:
      return SessionOp(SessionAction::kOpen);
    case kSessionClose:
      return SessionOp(SessionAction::kClose);
    default:
      return SessionOp(SessionAction::kRecover);
  }
}

// ---------------------------------------------------------------- own keys

void Client::OwnWrite(Load load) {
  const std::string key = OwnKey(id_, Pick(kOwnKeys));
  KeyState cur;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    cur = loop_.ledger_.own[id_].acked[key];
  }
  if (load == Load::kOwnPatchOps && !cur.exists)
    load = Load::kOwnSet;  // JSON Patch needs a value to patch
  const int64_t n = ++counter_;
  KeyState next{true, cur.exists ? cur.version + 1 : 1, json()};
  std::string method;
  json params = {{"key", key}};
  switch (load) {
    case Load::kOwnSet:
    case Load::kOwnCas:
      method = "state.set";
      next.value = {{"c", id_}, {"v", next.version}, {"n", n}};
      params["value"] = next.value;
      if (load == Load::kOwnCas) params["expected_version"] = cur.version;  // 0: must be absent
      break;
    case Load::kOwnDel:
      method = "state.del";
      next = KeyState{};
      break;
    case Load::kOwnPatchMerge: {
      method = "state.patch";
      const json patch = {{"v", next.version}, {"m", n}};
      next.value = cur.exists ? cur.value : json(nullptr);
      next.value.merge_patch(patch);
      params["merge"] = patch;
      break;
    }
    default: {
      method = "state.patch";
      const json ops = json::array({{{"op", "replace"}, {"path", "/v"}, {"value", next.version}},
                                    {{"op", "add"}, {"path", "/o"}, {"value", n}}});
      next.value = cur.value.patch(ops);
      params["ops"] = ops;
    }
  }
  Outcome o = Call(load, method, params);
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  OwnKeys& own = loop_.ledger_.own[id_];
  if (o.lost()) {
    own.if_lost = {{key, next}};
    return;
  }
  if (!o.ok()) return;  // reported by Call: no error is allowed here
  bool as_modelled;
  if (load == Load::kOwnDel) {
    as_modelled = o.result.value("deleted", !cur.exists) == cur.exists;
  } else if (method == "state.patch") {
    as_modelled = U64(o.result, "version") == next.version && o.result["value"] == next.value;
  } else {
    as_modelled = U64(o.result, "version") == next.version;
  }
  loop_.tally_.Expect(as_modelled, "own writes acked as modelled (version, patched value, deleted)",
                      key + " " + method + " " + Show(params) + " on " + cur.Describe() + ": " +
                          Show(o.result) + "; expected " + next.Describe());
  own.acked[key] = next;
}

void Client::OwnBadCas() {
  const std::string key = OwnKey(id_, Pick(kOwnKeys));
  uint64_t current;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    current = loop_.ledger_.own[id_].acked[key].version;
  }
  const uint64_t wrong = current + 1 + static_cast<uint64_t>(Pick(2));
  Outcome o = Call(Load::kOwnBadCas, "state.set",
                   {{"key", key}, {"value", "must not land"}, {"expected_version", wrong}},
                   {StatusCode::kVersionConflict});
  if (o.lost()) return;  // it cannot land: the verifier would see the value
  const bool conflict =
      o.is(StatusCode::kVersionConflict) && U64(o.status.details(), "current_version") == current;
  if (loop_.tally_.Expect(conflict, "wrong-version CAS conflicts with the current version",
                          key + " expected " + std::to_string(wrong) + " at version " +
                              std::to_string(current) + ": " + Show(o) + " " +
                              o.status.details().dump())) {
    loop_.tally_.Acked(Load::kOwnBadCas);
  }
}

void Client::OwnRead() {
  const std::string key = OwnKey(id_, Pick(kOwnKeys));
  Outcome o = Call(Load::kOwnRead, "state.get", {{"key", key}});
  if (!o.ok()) return;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  const KeyState& want = loop_.ledger_.own[id_].acked[key];
  const KeyState got = KeyState::FromGet(o.result);
  loop_.tally_.Expect(got == want, "own reads see the last acked write",
                      key + ": read " + got.Describe() + ", acked " + want.Describe());
}

void Client::Incr() {
  const std::string key = CounterKey(id_);
  KeyState cur;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    cur = loop_.ledger_.own[id_].acked[key];
  }
  const int64_t by = 1 + Pick(9);
  const KeyState next{true, cur.exists ? cur.version + 1 : 1,
                      (cur.exists ? cur.value.get<int64_t>() : 0) + by};
  Outcome o = Call(Load::kIncr, "state.incr", {{"key", key}, {"by", by}});
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  OwnKeys& own = loop_.ledger_.own[id_];
  if (o.lost()) {
    own.if_lost = {{key, next}};
    return;
  }
  if (!o.ok()) return;
  loop_.tally_.Expect(
      o.result["value"] == next.value && U64(o.result, "version") == next.version,
      "increments acked at the next value and version",
      key + " +" + std::to_string(by) + " on " + cur.Describe() + ": " + Show(o.result));
  own.acked[key] = next;
}

void Client::PairTxn(bool wrong) {
  const std::string x = PairKey(id_, 'x'), y = PairKey(id_, 'y'), fails = PairFailsKey(id_);
  KeyState cx, cy, cf;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    OwnKeys& own = loop_.ledger_.own[id_];
    cx = own.acked[x];
    cy = own.acked[y];
    cf = own.acked[fails];
  }
  // `wrong`: compare against a version x is not at, so the failure ops run.
  const int64_t n = ++counter_;
  const json value = {{"c", id_}, {"n", n}};
  json params = {
      {"compare",
       {{{"key", x}, {"version", cx.version + (wrong ? 1 : 0)}},
        {{"key", y}, {"version", cy.version}}}},
      {"success",
       {{{"set", {{"key", x}, {"value", value}}}}, {{"set", {{"key", y}, {"value", value}}}}}},
      {"failure", {{{"incr", {{"key", fails}}}}}}};
  std::map<std::string, KeyState> effect;
  if (wrong) {
    effect[fails] = {true, cf.exists ? cf.version + 1 : 1,
                     (cf.exists ? cf.value.get<int64_t>() : 0) + 1};
  } else {
    effect[x] = {true, cx.exists ? cx.version + 1 : 1, value};
    effect[y] = {true, cy.exists ? cy.version + 1 : 1, value};
  }
  Outcome o = Call(wrong ? Load::kPairTxnFailureBranch : Load::kPairTxn, "state.txn", params);
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  OwnKeys& own = loop_.ledger_.own[id_];
  if (o.lost()) {
    own.if_lost = effect;
    return;
  }
  if (!o.ok()) return;
  const json& results = o.result["results"];
  bool as_modelled = o.result.value("succeeded", wrong) == !wrong && results.is_array();
  if (as_modelled && wrong) {
    as_modelled = results.size() == 1 && results[0]["value"] == effect[fails].value &&
                  U64(results[0], "version") == effect[fails].version;
  } else if (as_modelled) {
    as_modelled = results.size() == 2 && U64(results[0], "version") == effect[x].version &&
                  U64(results[1], "version") == effect[y].version;
  }
  loop_.tally_.Expect(
      as_modelled, "txns take the branch their compares decide, acked as modelled",
      Show(params) + " on x " + cx.Describe() + ", y " + cy.Describe() + ": " + Show(o.result));
  for (auto& [k, v] : effect) own.acked[k] = v;
}

void Client::TransferTxn() {
  const int64_t amount = 1 + Pick(50);
  Outcome o = Call(Load::kTransferTxn, "state.txn",
                   {{"success",
                     {{{"incr", {{"key", kTransferA}, {"by", amount}}}},
                      {{"incr", {{"key", kTransferB}, {"by", -amount}}}}}}});
  if (!o.ok()) return;
  const json& r = o.result["results"];
  const bool whole = r.is_array() && r.size() == 2 && r[0]["value"].is_number_integer() &&
                     r[1]["value"].is_number_integer() &&
                     r[0]["value"].get<int64_t>() + r[1]["value"].get<int64_t>() == 0 &&
                     U64(r[0], "version") == U64(r[1], "version");
  loop_.tally_.Expect(whole, "txn transfers keep the two keys summing to zero, at one version",
                      Show(o.result));
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  loop_.ledger_.transfer_acked = std::max(loop_.ledger_.transfer_acked, U64(r[0], "version"));
}

void Client::SharedCas() {
  const std::string key = SharedKey(Pick(kSharedKeys));
  Outcome g = Call(Load::kSharedCas, "state.get", {{"key", key}});
  if (!g.ok()) return;
  const uint64_t v = g.result.is_null() ? 0 : U64(g.result, "version");
  Outcome o = Call(Load::kSharedCas, "state.set",
                   {{"key", key}, {"value", {{"c", id_}, {"v", v + 1}}}, {"expected_version", v}},
                   {StatusCode::kVersionConflict});
  if (o.is(StatusCode::kVersionConflict)) {
    loop_.tally_.Note("shared CAS conflicts");
    return;
  }
  if (!o.ok()) return;
  loop_.tally_.Expect(U64(o.result, "version") == v + 1, "shared CAS acked at expected + 1",
                      key + ": " + Show(o.result) + " after expected " + std::to_string(v));
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  auto& acked = loop_.ledger_.shared_acked[key];
  acked = std::max(acked, v + 1);
}

// ---------------------------------------------------------- TTLs and leases

void Client::TtlSet() {
  const std::string key = TtlKeyName(id_, Pick(kTtlKeys));
  TtlWrite w{++counter_, WallMs(), 0, 150 + Pick(2350)};
  Outcome o = Call(Load::kTtlSet, "state.set",
                   {{"key", key}, {"value", {{"c", id_}, {"n", w.n}}}, {"ttl_ms", w.ttl_ms}});
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  TtlKey& l = loop_.ledger_.ttl[key];
  if (o.lost()) {
    l.lost = w;  // its acked_ms becomes the kill's time
    return;
  }
  if (!o.ok()) return;
  w.acked_ms = WallMs();
  l.acked = w;
}

void Client::TtlRead() {
  const std::string key = TtlKeyName(id_, Pick(kTtlKeys));
  const int64_t sent = WallMs();
  Outcome o = Call(Load::kTtlRead, "state.get", {{"key", key}});
  if (!o.ok()) return;
  const int64_t acked = WallMs();
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  TtlKey& l = loop_.ledger_.ttl[key];
  l.acked = CheckTtlRead(loop_.tally_, key, l, o.result, sent, acked);
}

void Client::LeaseGone(SteadyTime acked) {
  // Under the ledger lock.
  LeaseLedger& l = loop_.ledger_.leases[id_];
  const auto early =
      std::chrono::duration_cast<std::chrono::milliseconds>(l.alive_until - acked).count();
  loop_.tally_.Expect(
      early <= kLivenessSlackMs, "leases never end before their TTL, restarts included",
      C(id_) + ": lease " + std::to_string(l.id) + " (ttl " + std::to_string(l.ttl_ms) +
          " ms) reported gone " + std::to_string(early) + " ms before it was due");
  l.ended.insert(l.id);
  l.id = 0;
  l.key_n.reset();
  l.key_in_doubt = false;
  l.revoke_in_doubt = false;
}

void Client::LeaseOp(LeaseAction action) {
  LeaseLedger l;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    l = loop_.ledger_.leases[id_];
  }
  const SteadyTime sent = SteadyClock::now();
  if (l.id == 0) {
    const int64_t ttl = 1000 + Pick(3000);
    Outcome o = Call(Load::kLeaseGrant, "lease.grant", {{"ttl_ms", ttl}, {"owner", C(id_)}});
    if (!o.ok()) return;  // a lost grant lapses by itself
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    LeaseLedger& m = loop_.ledger_.leases[id_];
    m.id = U64(o.result, "lease_id");
    m.ttl_ms = ttl;
    m.alive_until = sent + std::chrono::milliseconds(ttl);
    m.key_n.reset();
    m.key_in_doubt = m.revoke_in_doubt = false;
    return;
  }
  if (action == LeaseAction::kKeepalive) {
    Outcome o = Call(Load::kLeaseKeepalive, "lease.keepalive", {{"lease_id", l.id}},
                     {StatusCode::kNotFound});
    if (o.lost()) return;  // a keepalive only extends: the deadline we know still holds
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    LeaseLedger& m = loop_.ledger_.leases[id_];
    if (o.ok()) {
      m.alive_until = std::max(m.alive_until, sent + std::chrono::milliseconds(m.ttl_ms));
    } else if (o.is(StatusCode::kNotFound)) {
      LeaseGone(SteadyClock::now());
    }
  } else if (action == LeaseAction::kSetKey) {
    const int64_t n = ++counter_;
    Outcome o = Call(Load::kLeaseKey, "state.set",
                     {{"key", LeaseKeyName(id_)},
                      {"value", {{"c", id_}, {"n", n}, {"lease", l.id}}},
                      {"lease_id", l.id}},
                     {StatusCode::kNotFound});
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    LeaseLedger& m = loop_.ledger_.leases[id_];
    if (o.lost()) {
      m.key_in_doubt = true;
    } else if (o.ok()) {
      m.key_n = n;
    } else if (o.is(StatusCode::kNotFound)) {
      LeaseGone(SteadyClock::now());
    }
  } else {
    Outcome o =
        Call(Load::kLeaseRevoke, "lease.revoke", {{"lease_id", l.id}}, {StatusCode::kNotFound});
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    LeaseLedger& m = loop_.ledger_.leases[id_];
    if (o.lost()) {
      m.revoke_in_doubt = true;
    } else if (o.ok()) {
      m.ended.insert(m.id);
      m.id = 0;
      m.key_n.reset();
      m.key_in_doubt = false;
    } else if (o.is(StatusCode::kNotFound)) {
      LeaseGone(SteadyClock::now());
    }
  }
}

// ------------------------------------------------------------------ pub/sub

void Client::Publish(bool own) {
  const std::string channel = own ? OwnChannel(id_) : kSharedChannel;
  int64_t n;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    n = ++loop_.ledger_.published_n[id_];
  }
  json data = {{"c", id_}, {"n", n}, {"pad", std::string(static_cast<size_t>(Pick(301)), 'p')}};
  Outcome o = Call(own ? Load::kPublishOwn : Load::kPublishShared, "pubsub.publish",
                   {{"channel", channel}, {"data", data}});
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  ChannelLedger& ch = loop_.ledger_.channels[channel];
  if (o.lost()) {
    if (own) ch.own_in_doubt = true;
    return;
  }
  if (!o.ok()) return;
  const uint64_t seq = U64(o.result, "seq");
  if (own) {
    loop_.tally_.Expect(
        seq == ch.own_last + 1, "own channel seqs follow on",
        channel + ": acked seq " + std::to_string(seq) + " after " + std::to_string(ch.own_last));
    ch.own_last = seq;
  }
  loop_.tally_.Expect(ch.acked.emplace(seq, data).second, "a seq is acked once",
                      channel + " seq " + std::to_string(seq) + " acknowledged twice");
  if (auto d = ch.delivered.find(seq); d != ch.delivered.end()) {
    loop_.tally_.Expect(d->second == data, "subscribers get what was published",
                        channel + " seq " + std::to_string(seq) + ": pushed " + Show(d->second) +
                            ", acked " + Show(data));
  }
}

void Client::Subscribe(uint64_t from_seq) {
  Outcome o = Call(Load::kSubscribe, "pubsub.subscribe",
                   {{"channel", kSharedChannel}, {"from_seq", from_seq}});
  if (o.ok()) subscription_ = U64(o.result, "subscription");
}

void Client::DrainMessages() {
  while (conn_) {
    auto n = conn_->NextNotification(0);
    if (!n.ok()) return;
    const std::string method = n->value("method", "");
    const json params = n->value("params", json::object());
    if (U64(params, "subscription") != subscription_ || subscription_ == 0)
      continue;  // e.g. task.cancelled
    if (method == "pubsub.dropped") {
      // A backlog over the outbound limit: resume from where it stopped.
      loop_.tally_.Note("subscriptions dropped as slow and resumed");
      Subscribe(last_delivered_ + 1);
      continue;
    }
    if (method != "pubsub.message") continue;
    const uint64_t seq = U64(params, "seq");
    const json& data = params["data"];
    loop_.tally_.Expect(seq == last_delivered_ + 1,
                        "subscriptions deliver every seq once, in order, across restarts",
                        C(id_) + ": " + std::string(kSharedChannel) + " pushed seq " +
                            std::to_string(seq) + " after seq " + std::to_string(last_delivered_));
    last_delivered_ = std::max(last_delivered_, seq);
    loop_.tally_.Acked(Load::kMessageReceived);
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    ChannelLedger& ch = loop_.ledger_.channels[kSharedChannel];
    auto [it, fresh] = ch.delivered.emplace(seq, data);
    loop_.tally_.Expect(it->second == data, "subscribers get what was published",
                        std::string(kSharedChannel) + " seq " + std::to_string(seq) +
                            " pushed as " + Show(data) + " and as " + Show(it->second));
    if (auto a = ch.acked.find(seq); a != ch.acked.end()) {
      loop_.tally_.Expect(a->second == data, "subscribers get what was published",
                          std::string(kSharedChannel) + " seq " + std::to_string(seq) +
                              ": pushed " + Show(data) + ", acked " + Show(a->second));
    }
  }
}

// -------------------------------------------------------------------- locks

void Client::LockCycle() {
  const int l = Pick(kLocks);
  const std::string lock_name = LockName(l), key = FencedKey(l), owner = C(id_);
  Outcome a =
      Call(Load::kLockAcquire, "lock.acquire",
           {{"name", lock_name}, {"owner", owner}, {"ttl_ms", kLockTtlMs}, {"wait_ms", 300}},
           {StatusCode::kTimeout});
  if (a.lost()) {
    acquire_in_doubt_.insert(l);
    return;
  }
  if (a.is(StatusCode::kTimeout)) {
    loop_.tally_.Note("lock waits timed out");
    return;
  }
  if (!a.ok()) return;
  const uint64_t token = U64(a.result, "token");
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    auto& grants = loop_.ledger_.lock_grants[lock_name];
    auto [it, fresh] = grants.emplace(token, owner);
    loop_.tally_.Expect(it->second == owner, "a lock token has one owner",
                        lock_name + " token " + std::to_string(token) + " granted to " + owner +
                            " and " + it->second);
    // After a restart a new grant outranks every grant before the kill,
    // unless it is our own grant from before the kill whose reply was lost
    // (a re-entrant acquire hands that same token back).
    if (fresh && !acquire_in_doubt_.count(l)) {
      const uint64_t before = loop_.ledger_.tokens_before_restart[lock_name];
      loop_.tally_.Expect(token > before, "lock tokens increase across restarts",
                          lock_name + " granted token " + std::to_string(token) +
                              " <= " + std::to_string(before) + " granted before the last kill");
    }
    loop_.tally_.Expect(!loop_.ledger_.lock_released[lock_name].count(token),
                        "a released token is never granted again",
                        lock_name + " token " + std::to_string(token) +
                            " granted after its release was acknowledged");
  }
  acquire_in_doubt_.erase(l);

  if (OneIn(2)) {
    Outcome e = Call(Load::kLockExtend, "lock.extend",
                     {{"name", lock_name}, {"token", token}, {"ttl_ms", kLockTtlMs}},
                     {StatusCode::kNotOwner});
    if (e.lost()) return;
    if (e.is(StatusCode::kNotOwner))
      loop_.tally_.Note("lock extends refused: TTL lapsed (NOT_OWNER)");
  }
  Outcome g = Call(Load::kFencedWrite, "state.get", {{"key", key}});
  if (!g.ok()) return;
  const uint64_t version = g.result.is_null() ? 0 : U64(g.result, "version");
  const int64_t n = g.result.is_null() ? 0 : g.result["value"].value("n", int64_t{0});
  if (!g.result.is_null()) {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    auto [it, fresh] = loop_.ledger_.fenced[key].emplace(version, U64(g.result["value"], "token"));
    loop_.tally_.Expect(it->second == U64(g.result["value"], "token"),
                        "one fenced write per version",
                        key + " version " + std::to_string(version) + " read with token " +
                            Show(g.result["value"]) + ", earlier " + std::to_string(it->second));
  }
  // Now and then, stall past the lock's TTL: the fence must then refuse.
  const bool stall = OneIn(10);
  if (stall) std::this_thread::sleep_for(std::chrono::milliseconds(kLockTtlMs + 100));
  Outcome w = Call(Load::kFencedWrite, "state.set",
                   {{"key", key},
                    {"value", {{"token", token}, {"n", n + 1}, {"c", id_}}},
                    {"expected_version", version},
                    {"fence", {{"lock", lock_name}, {"token", token}}}},
                   {StatusCode::kFenced, StatusCode::kVersionConflict});
  if (w.lost()) return;
  if (w.ok()) {
    loop_.tally_.Expect(U64(w.result, "version") == version + 1,
                        "fenced writes acked at expected + 1", key + ": " + Show(w.result));
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    auto [it, fresh] = loop_.ledger_.fenced[key].emplace(version + 1, token);
    loop_.tally_.Expect(it->second == token, "one fenced write per version",
                        key + " version " + std::to_string(version + 1) + " acked with token " +
                            std::to_string(token) + ", seen earlier with " +
                            std::to_string(it->second));
  } else {
    loop_.tally_.Note(stall ? "fenced writes refused after a stall"
                            : "fenced writes refused without a stall");
  }
  Outcome r = Call(Load::kLockRelease, "lock.release", {{"name", lock_name}, {"token", token}},
                   {StatusCode::kNotOwner});
  if (r.ok()) {
    released_token_[l] = token;
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    loop_.ledger_.lock_released[lock_name].insert(token);
  } else if (r.is(StatusCode::kNotOwner)) {
    loop_.tally_.Note("lock releases refused: TTL lapsed (NOT_OWNER)");
  }
}

void Client::StaleFenceProbe() {
  if (released_token_.empty()) return LockCycle();
  auto it = released_token_.begin();
  std::advance(it, Pick(static_cast<int>(released_token_.size())));
  const int l = it->first;
  const uint64_t stale = it->second;
  Outcome o = Call(Load::kStaleFenceProbe, "state.set",
                   {{"key", FencedKey(l)},
                    {"value", {{"token", stale}, {"n", -1}, {"c", id_}, {"probe", true}}},
                    {"fence", {{"lock", LockName(l)}, {"token", stale}}}},
                   {StatusCode::kFenced});
  if (o.lost()) return;  // if it landed anyway, the verifier sees n != version
  if (loop_.tally_.Expect(o.is(StatusCode::kFenced), "writes with a released token are fenced",
                          FencedKey(l) + " with released token " + std::to_string(stale) + ": " +
                              (o.ok() ? "ACKNOWLEDGED " + Show(o.result) : o.status.ToString()))) {
    loop_.tally_.Acked(Load::kStaleFenceProbe);
  }
}

// -------------------------------------------------------------------- tasks

void Client::Submit(bool delayed) {
  const int kind = delayed ? 3 : Pick(8) < 3 ? Pick(3) : 5 + Pick(5);
  json params = {
      {"queue", kQueue}, {"payload", {{"c", id_}, {"n", ++counter_}}}, {"tags", {id_, counter_}}};
  int64_t delay = 0;
  if (kind < 3) {  // a lease short enough to lapse while held
    params.update({{"timeout_ms", kShortLeaseMs},
                   {"max_attempts", 1000},
                   {"backoff", {{"type", "fixed"}, {"delay_ms", 0}}}});
  } else if (kind < 5) {
    delay = 100 + Pick(1400);
    params.update({{"timeout_ms", kLongLeaseMs}, {"delay_ms", delay}, {"max_attempts", 1000}});
  } else if (kind < 7) {  // retries with a backoff, and attempts that run out
    const json backoff =
        OneIn(2) ? json{{"type", "fixed"}, {"delay_ms", 20 + Pick(280)}}
                 : json{{"type", "exponential"}, {"delay_ms", 20}, {"max_delay_ms", 200}};
    params.update({{"timeout_ms", kLongLeaseMs}, {"max_attempts", 3}, {"backoff", backoff}});
  } else if (kind < 8) {  // only registered workers have the capability
    params.update({{"timeout_ms", kLongLeaseMs}, {"max_attempts", 1000}, {"requires", {"any"}}});
  } else {
    params.update({{"timeout_ms", kLongLeaseMs},
                   {"max_attempts", 1000},
                   {"backoff", {{"type", "fixed"}, {"delay_ms", 0}}}});
  }
  const int64_t sent = WallMs();
  Outcome o = Call(delay ? Load::kTaskSubmitDelayed : Load::kTaskSubmit, "task.submit", params);
  if (!o.ok()) return;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  const std::string id = o.result["task_id"];
  TaskLedger& t = loop_.ledger_.tasks[id];
  t.queue = kQueue;
  t.max_attempts = params["max_attempts"];
  t.backoff = params.value("backoff", json{{"type", "fixed"}, {"delay_ms", 1000}});
  t.not_before_ms = delay ? sent + delay : 0;
  loop_.ledger_.dirty_tasks.insert(id);
}

void Client::SubmitBatch() {
  const int64_t n = ++counter_;
  const bool k2_depends = OneIn(2);
  const int64_t delay = OneIn(3) ? 100 + Pick(700) : 0;
  auto task = [&](const char* ref) {
    return json{{"queue", kDagQueue},
                {"ref", ref},
                {"payload", {{"c", id_}, {"n", n}, {"ref", ref}}},
                {"idempotency_key", C(id_) + "-g" + std::to_string(n) + "-" + ref},
                {"tags", {id_, n}},
                {"timeout_ms", 2000},
                {"max_attempts", 2},
                {"backoff", {{"type", "fixed"}, {"delay_ms", 30}}}};
  };
  json a = task("a"), b = task("b"), p = task("p"), k1 = task("k1"), k2 = task("k2");
  if (delay) a["delay_ms"] = delay;
  b["depends_on"] = {"a"};
  p["aggregate"] = "concatenate";
  k1["parent_id"] = "p";
  k2["parent_id"] = "p";
  if (k2_depends) k2["depends_on"] = {"a"};
  const json params = {{"tasks", {a, b, p, k1, k2}}};
  const int64_t sent = WallMs();
  Outcome o = Call(Load::kTaskSubmitBatch, "task.submit_batch", params);
  if (o.lost()) {
    batch_in_doubt_ = BatchInDoubt{params, sent, delay, k2_depends};
    return;
  }
  if (o.ok()) RecordBatch(o.result["task_ids"], k2_depends, delay ? sent + delay : 0);
}

void Client::ResubmitBatchInDoubt() {
  if (!batch_in_doubt_) return;
  // The same batch with the same idempotency keys: if the lost one landed,
  // this returns its tasks, all created before the kill; if not, it creates
  // them now. A batch that landed in part would show both.
  Outcome o = Call(Load::kTaskSubmitBatch, "task.submit_batch", batch_in_doubt_->params);
  if (!o.ok()) return;  // lost again: try at the next connect
  uint64_t restart_revision;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    restart_revision = loop_.ledger_.restart.revision;
  }
  int before = 0, total = 0;
  for (const json& id : o.result["task_ids"]) {
    ++total;
    if (std::stoull(id.get<std::string>().substr(1)) <= restart_revision) ++before;
  }
  loop_.tally_.Expect(before == 0 || before == total,
                      "a lost submit_batch landed whole or not at all",
                      C(id_) + ": " + std::to_string(before) + " of " + std::to_string(total) +
                          " tasks of a lost batch existed before the restart (revision " +
                          std::to_string(restart_revision) + "): " + Show(o.result));
  loop_.tally_.Note(before ? "lost batches that had landed" : "lost batches that had not landed");
  const BatchInDoubt b = *batch_in_doubt_;
  batch_in_doubt_.reset();
  RecordBatch(o.result["task_ids"], b.k2_depends, b.delay_ms ? b.sent_ms + b.delay_ms : 0);
}

void Client::RecordBatch(const json& ids, bool k2_depends, int64_t not_before_ms) {
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  DagBatch batch;
  batch.k2_depends = k2_depends;
  for (const json& id : ids) batch.ids.push_back(id.get<std::string>());
  if (!loop_.tally_.Expect(batch.ids.size() == DagBatch::kRoles,
                           "submit_batch answers one id per task", Show(ids)))
    return;
  const int index = static_cast<int>(loop_.ledger_.batches.size());
  for (int role = 0; role < DagBatch::kRoles; ++role) {
    TaskLedger& t = loop_.ledger_.tasks[batch.ids[role]];
    t.queue = kDagQueue;
    t.batch = index;
    t.max_attempts = 2;
    t.backoff = {{"type", "fixed"}, {"delay_ms", 30}};
    if (role == DagBatch::kA) t.not_before_ms = not_before_ms;
    loop_.ledger_.dirty_tasks.insert(batch.ids[role]);
  }
  loop_.ledger_.batches.push_back(std::move(batch));
  loop_.ledger_.dirty_batches.insert(static_cast<size_t>(index));
}

void Client::RecordClaims(const json& tasks, const std::string& worker, int64_t sent_ms,
                          int64_t acked_ms, Load load) {
  if (!tasks.is_array()) return;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  for (const json& t : tasks) {
    const std::string id = t.value("task_id", "");
    const uint64_t token = U64(t, "lease_token");
    const int64_t attempt = t.value("attempt", int64_t{0});
    TaskLedger& l = loop_.ledger_.tasks[id];
    if (l.queue.empty()) l.queue = t.value("queue", "");  // from a lost submit that landed
    loop_.tally_.Expect(token > loop_.ledger_.restart.revision,
                        "task lease tokens above the revision at the restart",
                        id + " claimed with lease token " + std::to_string(token) +
                            " after a restart at revision " +
                            std::to_string(loop_.ledger_.restart.revision));
    if (l.not_before_ms) {
      loop_.tally_.Expect(acked_ms + kClockSlackMs >= l.not_before_ms,
                          "no task handed out before its run time (delay_ms, backoff)",
                          id + " claimed (answered at " + std::to_string(acked_ms) +
                              ") before its run time " + std::to_string(l.not_before_ms));
    }
    l.claims.push_back({token, worker, sent_ms, acked_ms, attempt});
    loop_.ledger_.dirty_tasks.insert(id);
    if (l.batch >= 0) loop_.ledger_.dirty_batches.insert(static_cast<size_t>(l.batch));
    held_.push_back({id, token, attempt, worker});
    loop_.tally_.Acked(load);
  }
}

void Client::Claim() {
  bool registered;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    registered = loop_.ledger_.workers[id_].registered;
  }
  const bool as_worker = registered && OneIn(2);
  const std::string worker = as_worker ? WorkerId(id_) : "w" + std::to_string(id_);
  const json queues = OneIn(3) ? json{kDagQueue} : json{kQueue, kDagQueue};
  const int64_t sent = WallMs();
  // A registered worker marked dead (its heartbeats lapsed across a slow
  // restart) is refused until it heartbeats again.
  Outcome o = Call(Load::kTaskClaim, "task.claim",
                   {{"queues", queues}, {"worker_id", worker}, {"max", 1 + Pick(2)}},
                   as_worker ? std::initializer_list<StatusCode>{StatusCode::kInvalidState}
                             : std::initializer_list<StatusCode>{});
  if (o.is(StatusCode::kInvalidState)) {
    loop_.tally_.Note("claims refused: worker marked dead (INVALID_STATE)");
    last_heartbeat_ = {};
    return;
  }
  if (!o.ok()) return;
  RecordClaims(o.result["tasks"], worker, sent, WallMs(), Load::kTaskClaim);
}

void Client::RetryCompleteInDoubt() {
  if (!complete_in_doubt_) return;
  const HeldTask h = *complete_in_doubt_;
  // The same complete again: NOT_OWNER if its lease lapsed meanwhile and it
  // went to someone else; INVALID_STATE (completed) if the lost one landed.
  Outcome o =
      Call(Load::kTaskComplete, "task.complete",
           {{"task_id", h.id}, {"lease_token", h.token}, {"result", complete_in_doubt_result_}},
           {StatusCode::kNotOwner, StatusCode::kInvalidState});
  if (o.lost()) return;
  complete_in_doubt_.reset();
  const bool landed =
      o.is(StatusCode::kInvalidState) && o.status.details().value("state", "") == "completed";
  if (!o.ok() && !landed) {
    loop_.tally_.Note("retried completes refused");
    return;
  }
  if (landed) loop_.tally_.Note("lost completes that had landed");
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  TaskLedger& t = loop_.ledger_.tasks[h.id];
  if (landed) {
    // Completed, but by our lost complete? Only if no other claim came since.
    const bool ours = !t.claims.empty() && t.claims.back().token == h.token;
    if (!ours) return;
  }
  t.completes.push_back(h.token);
  t.result = complete_in_doubt_result_;
  loop_.ledger_.dirty_tasks.insert(h.id);
  if (t.batch >= 0) loop_.ledger_.dirty_batches.insert(static_cast<size_t>(t.batch));
}

void Client::Finish(FinishAction action) {
  if (held_.empty()) return Claim();
  // Completes take the task held longest, whose lease may have lapsed (a
  // stale complete must be refused); fails and extends the newest, so that
  // even a slow server acknowledges enough of them.
  const bool oldest =
      action == FinishAction::kComplete || action == FinishAction::kCompleteClaimNext;
  const HeldTask h = oldest ? held_.front() : held_.back();
  held_.erase(oldest ? held_.begin() : held_.end() - 1);
  TaskLedger info;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    info = loop_.ledger_.tasks[h.id];
  }
  if (action == FinishAction::kComplete || action == FinishAction::kCompleteClaimNext) {
    const json result = {{"c", id_}, {"t", h.id}, {"n", ++counter_}};
    json params = {{"task_id", h.id}, {"lease_token", h.token}, {"result", result}};
    const bool next = action == FinishAction::kCompleteClaimNext;
    if (next) params["claim_next"] = {{"queues", {kQueue, kDagQueue}}, {"max", 1}};
    const int64_t sent = WallMs();
    Outcome o = Call(Load::kTaskComplete, "task.complete", params,
                     {StatusCode::kNotOwner, StatusCode::kInvalidState});
    if (o.lost()) {
      complete_in_doubt_ = h;
      complete_in_doubt_result_ = result;
      return;
    }
    if (!o.ok()) {
      loop_.tally_.Note(o.is(StatusCode::kNotOwner)
                            ? "completes refused: lease lapsed (NOT_OWNER)"
                            : "completes refused: not running (INVALID_STATE)");
      return;
    }
    {
      std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
      TaskLedger& t = loop_.ledger_.tasks[h.id];
      t.completes.push_back(h.token);
      t.result = result;
      loop_.ledger_.dirty_tasks.insert(h.id);
      if (t.batch >= 0) loop_.ledger_.dirty_batches.insert(static_cast<size_t>(t.batch));
    }
    if (next)
      RecordClaims(o.result.value("tasks", json::array()), h.worker, sent, WallMs(),
                   Load::kTaskClaimNext);
    return;
  }
  if (action == FinishAction::kFailRetry || action == FinishAction::kFailFinal) {
    const bool retry = action == FinishAction::kFailRetry;
    const std::string error = "fail " + C(id_) + " #" + std::to_string(++counter_);
    const int64_t sent = WallMs();
    Outcome o =
        Call(retry ? Load::kTaskFailRetry : Load::kTaskFailFinal, "task.fail",
             {{"task_id", h.id}, {"lease_token", h.token}, {"error", error}, {"retry", retry}},
             {StatusCode::kNotOwner, StatusCode::kInvalidState});
    if (!o.ok()) {
      if (!o.lost()) loop_.tally_.Note("fails refused: lease lapsed or not running");
      return;
    }
    const int64_t acked = WallMs();
    const std::string state = o.result.value("state", "");
    if (info.max_attempts > 0) {
      const bool final = !retry || h.attempt >= info.max_attempts;
      loop_.tally_.Expect((state == "failed") == final,
                          "task.fail retries while attempts are left, else fails",
                          h.id + " attempt " + std::to_string(h.attempt) + " of " +
                              std::to_string(info.max_attempts) + ", retry " +
                              (retry ? "true" : "false") + ": " + Show(o.result));
    }
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    TaskLedger& t = loop_.ledger_.tasks[h.id];
    t.fail_errors[h.token] = error;
    if (state == "failed") {
      t.expect_failed = true;
      failed_by_me_.push_back(h.id);
    } else if (state == "delayed" && !info.backoff.is_null()) {
      const int64_t next_run = o.result.value("next_run_at_ms", int64_t{0});
      const int64_t b = BackoffMs(info.backoff, h.attempt);
      loop_.tally_.Expect(
          next_run >= sent + b - kClockSlackMs && next_run <= acked + b + kClockSlackMs,
          "retries wait for their backoff",
          h.id + " attempt " + std::to_string(h.attempt) + " backoff " + Show(info.backoff) +
              " = " + std::to_string(b) + " ms: next_run_at_ms " + std::to_string(next_run) +
              ", fail sent at " + std::to_string(sent) + ", answered at " + std::to_string(acked));
      t.not_before_ms = std::max(t.not_before_ms, next_run);
    }
    loop_.ledger_.dirty_tasks.insert(h.id);
    if (t.batch >= 0) loop_.ledger_.dirty_batches.insert(static_cast<size_t>(t.batch));
    return;
  }
  Outcome o = Call(Load::kTaskExtend, "task.extend",
                   {{"task_id", h.id}, {"lease_token", h.token}, {"extend_ms", 300 + Pick(2700)}},
                   {StatusCode::kNotOwner, StatusCode::kInvalidState});
  if (o.ok()) held_.push_back(h);  // still ours: finish it later
}

void Client::RetryFailed() {
  if (failed_by_me_.empty()) return Submit(false);
  const std::string id = failed_by_me_.back();
  failed_by_me_.pop_back();
  Outcome o = Call(Load::kTaskRetry, "task.retry", {{"task_id", id}});
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  TaskLedger& t = loop_.ledger_.tasks[id];
  if (o.lost()) {
    t.retry_in_doubt = true;
    return;
  }
  if (!o.ok()) return;
  const std::string state = o.result.value("state", "");
  loop_.tally_.Expect(state == "ready" || state == "running",
                      "task.retry makes a failed task ready", id + ": " + Show(o.result));
  t.expect_failed = false;
  t.retry_in_doubt = false;
  loop_.ledger_.dirty_tasks.insert(id);
  if (t.batch >= 0) loop_.ledger_.dirty_batches.insert(static_cast<size_t>(t.batch));
}

// ------------------------------------------------- workers, checkpoints, sessions

void Client::WorkerHeartbeatIfDue() {
  bool registered;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    registered = loop_.ledger_.workers[id_].registered;
  }
  const SteadyTime now = SteadyClock::now();
  if (!registered || now - last_heartbeat_ < std::chrono::milliseconds(400)) return;
  Outcome o = Call(Load::kWorkerHeartbeat, "worker.heartbeat", {{"worker_id", WorkerId(id_)}});
  if (!o.ok()) return;
  last_heartbeat_ = now;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  WorkerLedger& w = loop_.ledger_.workers[id_];
  w.alive_until = std::max(w.alive_until, now + std::chrono::milliseconds(kWorkerTtlMs));
}

void Client::WorkerOp() {
  bool registered;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    registered = loop_.ledger_.workers[id_].registered;
  }
  const SteadyTime sent = SteadyClock::now();
  if (registered) {
    // Its running tasks go back to their queues: our completes of them must
    // then be refused (NOT_OWNER).
    Outcome o = Call(Load::kWorkerDeregister, "worker.deregister", {{"worker_id", WorkerId(id_)}});
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    WorkerLedger& w = loop_.ledger_.workers[id_];
    if (o.lost()) w.in_doubt = true;
    if (o.ok()) w.registered = false;
    return;
  }
  Outcome o = Call(Load::kWorkerRegister, "worker.register",
                   {{"worker_id", WorkerId(id_)},
                    {"name", "crash-loop " + C(id_)},
                    {"capabilities", {"any", C(id_)}},
                    {"max_concurrency", kWorkerMaxConcurrency},
                    {"heartbeat_ttl_ms", kWorkerTtlMs}});
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  WorkerLedger& w = loop_.ledger_.workers[id_];
  if (o.lost()) w.in_doubt = true;
  if (!o.ok()) return;
  w.registered = true;
  w.in_doubt = false;
  w.max_concurrency = kWorkerMaxConcurrency;
  w.alive_until = sent + std::chrono::milliseconds(kWorkerTtlMs);
  last_heartbeat_ = sent;
}

void Client::SaveCheckpoint() {
  json data = {{"c", id_},
               {"n", ++counter_},
               {"notes", std::string(static_cast<size_t>(100 + Pick(2900)), 'n')}};
  Outcome o = Call(Load::kCheckpointSave, "checkpoint.save",
                   {{"session_id", SessionId(id_)}, {"data", data}});
  if (!o.ok()) return;
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  loop_.ledger_.checkpoints[SessionId(id_)][U64(o.result, "checkpoint_id")] = data;
}

void Client::AutoCheckpoint() {
  const int64_t n = ++counter_;
  json data = {{"c", id_}, {"n", n}, {"notes", std::string(static_cast<size_t>(Pick(1000)), 'a')}};
  Outcome o = Call(Load::kCheckpointAuto, "checkpoint.auto",
                   {{"session_id", AutoSessionId(id_)},
                    {"data", data},
                    {"force", true},
                    {"signals", {{"messages", n}}}});
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  AutoCheckpoints& a = loop_.ledger_.autos[id_];
  if (o.lost()) {
    ++a.since;
    return;
  }
  if (!o.ok()) return;
  if (!loop_.tally_.Expect(o.result.value("saved", false), "forced checkpoint.auto saves",
                           AutoSessionId(id_) + ": " + Show(o.result)))
    return;
  ++a.since;
  a.acked[U64(o.result, "checkpoint_id")] = data;
}

void Client::SessionOp(SessionAction action) {
  if (action == SessionAction::kOpen || my_sessions_.empty()) {
    // A session with a short heartbeat, a checkpoint, then silence: it goes
    // unclean, and recovery offers the checkpoint.
    const std::string sid = "fu-" + C(id_) + "-" + std::to_string(++counter_);
    const int64_t ttl = 200 + Pick(400);
    const SteadyTime sent = SteadyClock::now();
    Outcome o = Call(Load::kSessionOpen, "session.open",
                     {{"session_id", sid},
                      {"name", "fu-" + C(id_)},
                      {"heartbeat_ttl_ms", ttl},
                      {"keep_checkpoints", 3}});
    if (!o.ok()) return;  // a lost open is not followed
    {
      std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
      AbandonedSession& s = loop_.ledger_.sessions[sid];
      s.client = id_;
      s.ttl_ms = ttl;
      s.alive_until = sent + std::chrono::milliseconds(ttl);
      loop_.ledger_.dirty_sessions.insert(sid);
    }
    my_sessions_.push_back(sid);
    const json data = {{"c", id_}, {"s", sid}};
    Outcome c =
        Call(Load::kCheckpointSave, "checkpoint.save", {{"session_id", sid}, {"data", data}});
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    AbandonedSession& s = loop_.ledger_.sessions[sid];
    if (c.lost()) s.checkpoint_in_doubt = true;
    if (c.ok()) s.checkpoint = data;
    return;
  }
  const size_t i = static_cast<size_t>(Pick(static_cast<int>(my_sessions_.size())));
  const std::string sid = my_sessions_[i];
  if (action == SessionAction::kClose) {
    Outcome o = Call(Load::kSessionClose, "session.close", {{"session_id", sid}});
    if (o.lost() || o.ok()) my_sessions_.erase(my_sessions_.begin() + static_cast<long>(i));
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    AbandonedSession& s = loop_.ledger_.sessions[sid];
    if (o.lost()) s.close_in_doubt = true;
    if (o.ok()) s.closed = true;
    loop_.ledger_.dirty_sessions.insert(sid);
    return;
  }
  Outcome o = Call(Load::kRecoveryCheck, "recovery.check", {{"session_id", sid}});
  if (!o.ok()) return;
  const SteadyTime answered = SteadyClock::now();
  const std::string state = o.result.value("session", json::object()).value("state", "");
  AbandonedSession s;
  {
    std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
    s = loop_.ledger_.sessions[sid];
    if (state == "unclean") {
      const auto early =
          std::chrono::duration_cast<std::chrono::milliseconds>(s.alive_until - answered).count();
      loop_.tally_.Expect(early <= kLivenessSlackMs,
                          "sessions go unclean only after their heartbeat TTL, restarts included",
                          sid + " (ttl " + std::to_string(s.ttl_ms) + " ms) unclean " +
                              std::to_string(early) + " ms before it was due");
    }
  }
  if (state != "unclean") return;  // still open: a restart gave it a fresh TTL
  // The reply describes one moment, the one it was applied at: a session
  // it shows unclean is one it offers (ReplyLaterSnapshotTest).
  loop_.tally_.Expect(o.result.value("recovery_available", false),
                      "an unclean session offers recovery", sid + ": " + Show(o.result));
  if (s.checkpoint && !s.checkpoint_in_doubt) {
    const json last = o.result.value("last_checkpoint", json(nullptr));
    loop_.tally_.Expect(last.is_object() && last["data"] == *s.checkpoint,
                        "recovery offers the session's last acked checkpoint",
                        sid + ": " + Show(o.result));
  }
  Outcome a = Call(Load::kRecoveryAck, "recovery.ack", {{"session_id", sid}});
  if (a.lost() || a.ok()) my_sessions_.erase(my_sessions_.begin() + static_cast<long>(i));
  std::lock_guard<std::mutex> lock(loop_.ledger_.mu);
  AbandonedSession& m = loop_.ledger_.sessions[sid];
  if (a.lost()) m.ack_in_doubt = true;
  if (a.ok()) m.acked = true;
  loop_.ledger_.dirty_sessions.insert(sid);
}

}  // namespace shim::fault
