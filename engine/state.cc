#include "engine/state.h"

#include <utility>
#include <vector>

#include "base/json_text.h"
#include "engine/json_build.h"
#include "engine/json_parse.h"
#include "engine/leases.h"
#include "engine/locks.h"
#include "engine/reply_budget.h"

namespace shim::engine {

using nlohmann::json;
using storage::Family;

namespace {

// state.get's result as text: what dumping the result document would give
// (keys in std::map order), with the stored value text copied in rather
// than parsed into a document and dumped again; at 16 gets in flight per
// client that parse and dump were a third of the server's time.
std::string EncodeGetResult(const std::string& key, const KvEntry& e) {
  std::string out;
  out.reserve(e.value_json.size() + key.size() + 112);
  auto number_or_null = [&out](auto v) { out += v ? std::to_string(v) : std::string("null"); };
  out += R"({"expires_at_ms":)";
  number_or_null(e.expires_at_ms);
  out += R"(,"key":)";
  AppendJsonString(out, key);
  out += R"(,"lease_id":)";
  number_or_null(e.lease_id);
  out += R"(,"revision":)";
  out += std::to_string(e.revision);
  out += R"(,"value":)";
  out += e.value_json;
  out += R"(,"version":)";
  out += std::to_string(e.version);
  out += '}';
  return out;
}

Status VersionConflict(const std::string& key, uint64_t expected, uint64_t current) {
  return Status(StatusCode::kVersionConflict,
                "key '" + key + "' is at version " + std::to_string(current) + ", expected " +
                    std::to_string(expected),
                {{"current_version", current}});
}

}  // namespace

Status StateModule::Load() {
  kv_.clear();
  keys_by_lease_.clear();
  loaded_expiries_.clear();
  return ScanRecords(core_.store(), kKvRecords, [&](std::string_view k, std::string_view v) {
    std::string key;
    KvEntry e;
    if (!DecodeKvKey(k, &key) || !DecodeKvRecord(v, &e)) return false;
    if (e.expires_at_ms != 0) loaded_expiries_.emplace_back(key, e.expires_at_ms);
    if (e.lease_id != 0) keys_by_lease_[e.lease_id].insert(key);
    kv_.emplace_hint(kv_.end(), std::move(key), std::move(e));
    return true;
  });
}

void StateModule::SchedulePurgesOfLoadedKeys() {
  for (auto& [key, expires_at_ms] : loaded_expiries_) SchedulePurge(key, expires_at_ms);
  loaded_expiries_.clear();
  loaded_expiries_.shrink_to_fit();
}

const KvEntry* StateModule::Lookup(const std::string& key, const Overlay& overlay) const {
  const KvEntry* e = nullptr;
  if (auto o = overlay.find(key); o != overlay.end()) {
    e = o->second ? &*o->second : nullptr;
  } else if (auto it = kv_.find(key); it != kv_.end()) {
    e = &it->second;
  }
  if (e && e->expires_at_ms != 0 && e->expires_at_ms <= core_.clock().NowMs()) return nullptr;
  // A key whose lease has lapsed is gone even if the lease's timer has not
  // run yet (requests are served in between): no reader may see it.
  if (e && e->lease_id != 0 && !leases_.Exists(e->lease_id)) return nullptr;
  return e;
}

Status StateModule::CheckExpected(Params& p, const std::string& key, const Overlay& overlay) {
  auto expected = p.OptInt("expected_version", {.min = 0});
  if (!p.ok()) return p.status();
  if (!expected) return Status::Ok();
  const KvEntry* cur = Lookup(key, overlay);
  uint64_t current = cur ? cur->version : 0;
  if (static_cast<uint64_t>(*expected) != current) return VersionConflict(key, *expected, current);
  return Status::Ok();
}

Result<uint64_t> StateModule::CheckFenceAndLease(Params& p) {
  if (const json* fence = p.OptAny("fence"); fence && !fence->is_null()) {
    SHIM_RETURN_IF_ERROR(locks_.CheckFence(*fence));
  }
  auto lease_id = p.OptInt("lease_id", {.min = 1});
  if (!p.ok()) return p.status();
  if (lease_id && !leases_.Exists(static_cast<uint64_t>(*lease_id))) {
    return Status::NotFound("no lease " + std::to_string(*lease_id) + " (it may have expired)");
  }
  return static_cast<uint64_t>(lease_id.value_or(0));
}

void StateModule::IndexLease(const std::string& key, uint64_t old_lease, uint64_t new_lease) {
  if (old_lease == new_lease) return;
  if (old_lease != 0) {
    auto it = keys_by_lease_.find(old_lease);
    if (it != keys_by_lease_.end()) {
      it->second.erase(key);
      if (it->second.empty()) keys_by_lease_.erase(it);
    }
  }
  if (new_lease != 0) keys_by_lease_[new_lease].insert(key);
}

void StateModule::DeleteForLease(uint64_t lease_id) {
  auto it = keys_by_lease_.find(lease_id);
  if (it == keys_by_lease_.end()) return;
  Overlay overlay;
  for (const std::string& key : it->second) overlay[key] = std::nullopt;
  Apply(overlay);
}

size_t StateModule::DeletePrefix(const std::string& prefix) {
  Overlay overlay;
  for (auto it = kv_.lower_bound(prefix);
       it != kv_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    overlay[it->first] = std::nullopt;
  }
  const size_t n = overlay.size();
  Apply(overlay);
  return n;
}

Result<json> StateModule::PlanSet(const json& params, Overlay& overlay) {
  const auto& lim = core_.limits();
  // The fields of state.set and of a txn's set op.
  static constexpr std::string_view kFields[] = {"key",   "value",    "ttl_ms",
                                                 "fence", "lease_id", "expected_version"};
  Params p(params, kFields);
  std::string key = p.Str("key", {.min = 1, .max = lim.max_key_bytes});
  const json& value = p.Any("value");
  auto ttl = p.OptInt("ttl_ms", {.min = 1, .max = lim.max_ttl_ms});
  if (!p.ok()) return p.status();
  SHIM_ASSIGN_OR_RETURN(uint64_t lease_id, CheckFenceAndLease(p));
  SHIM_RETURN_IF_ERROR(CheckExpected(p, key, overlay));
  std::string text = DumpCompact(value);
  if (text.size() > lim.max_value_bytes) {
    return Status::TooLarge(
        "value: encoded size over " + std::to_string(lim.max_value_bytes) + " bytes",
        lim.max_value_bytes);
  }
  // A set without lease_id detaches the key from its lease.
  return StageWrite(overlay, key, Lookup(key, overlay), std::move(text),
                    ttl ? core_.clock().NowMs() + *ttl : 0, lease_id, json::object());
}

Result<json> StateModule::PlanPatch(const json& params, Overlay& overlay) {
  const auto& lim = core_.limits();
  static constexpr std::string_view kFields[] = {"key",   "merge",    "ops",
                                                 "fence", "lease_id", "expected_version"};
  Params p(params, kFields);
  std::string key = p.Str("key", {.min = 1, .max = lim.max_key_bytes});
  const json* merge = p.OptAny("merge");
  const json* ops = p.OptArray("ops");
  if (!p.ok()) return p.status();
  if ((merge == nullptr) == (ops == nullptr)) {
    return Status::InvalidParams("merge",
                                 "exactly one of merge (RFC 7396) or ops (RFC 6902) is required");
  }
  SHIM_RETURN_IF_ERROR(CheckFenceAndLease(p).status());
  SHIM_RETURN_IF_ERROR(CheckExpected(p, key, overlay));
  const KvEntry* cur = Lookup(key, overlay);
  // The patched value is held to the value limits while it is built: a few
  // `copy` ops can double it again and again. And a patch costs what its
  // value weighs, not what its request does: the value is read, rebuilt,
  // written back and returned. So the work of every patch in the command
  // (a txn may hold a thousand of a 1 MiB value) counts against one budget.
  const JsonBuildLimits build{.max_bytes = lim.max_value_bytes,
                              .max_depth = kMaxJsonDepth,
                              .max_work = lim.max_patch_work,
                              .work = &patch_work_};
  json value = nullptr;
  if (cur) {
    SHIM_RETURN_IF_ERROR(ChargeJsonWork(build, cur->value_json.size()));
    SHIM_ASSIGN_OR_RETURN(value, cur->Value(key));
  }
  SHIM_RETURN_IF_ERROR(merge ? ApplyMergePatch(value, *merge, build)
                             : ApplyJsonPatch(value, *ops, build));
  std::string text = DumpCompact(value);
  if (text.size() > lim.max_value_bytes) {
    return Status::TooLarge("patched value over " + std::to_string(lim.max_value_bytes) + " bytes",
                            lim.max_value_bytes);
  }
  SHIM_RETURN_IF_ERROR(ChargeJsonWork(build, text.size()));
  return StageWrite(overlay, key, cur, std::move(text), cur ? cur->expires_at_ms : 0,
                    cur ? cur->lease_id : 0, {{"value", std::move(value)}});
}

Result<json> StateModule::PlanIncr(const json& params, Overlay& overlay) {
  const auto& lim = core_.limits();
  static constexpr std::string_view kFields[] = {"key",   "by",       "ttl_ms",
                                                 "fence", "lease_id", "expected_version"};
  Params p(params, kFields);
  std::string key = p.Str("key", {.min = 1, .max = lim.max_key_bytes});
  int64_t by = p.OptInt("by").value_or(1);
  auto ttl = p.OptInt("ttl_ms", {.min = 1, .max = lim.max_ttl_ms});
  if (!p.ok()) return p.status();
  SHIM_RETURN_IF_ERROR(CheckFenceAndLease(p).status());
  SHIM_RETURN_IF_ERROR(CheckExpected(p, key, overlay));
  const KvEntry* cur = Lookup(key, overlay);
  int64_t base = 0;
  if (cur) {
    SHIM_ASSIGN_OR_RETURN(const json v, cur->Value(key));
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))) {
      return Status(StatusCode::kTypeMismatch,
                    "key '" + key + "' holds " + std::string(v.type_name()) + ", not an integer");
    }
    base = v.get<int64_t>();
  }
  int64_t sum;
  if (__builtin_add_overflow(base, by, &sum)) {
    return Status(StatusCode::kTypeMismatch,
                  "key '" + key + "': increment overflows a 64-bit integer");
  }
  return StageWrite(overlay, key, cur, DumpCompact(json(sum)),
                    ttl ? core_.clock().NowMs() + *ttl : (cur ? cur->expires_at_ms : 0),
                    cur ? cur->lease_id : 0, {{"value", sum}});
}

json StateModule::StageWrite(Overlay& overlay, const std::string& key, const KvEntry* cur,
                             std::string value_json, int64_t expires_at_ms, uint64_t lease_id,
                             json reply) {
  KvEntry e;
  e.value_json = std::move(value_json);
  e.version = cur ? cur->version + 1 : 1;
  e.revision = PendingRevision();
  e.expires_at_ms = expires_at_ms;
  e.lease_id = lease_id;
  reply["version"] = e.version;
  reply["revision"] = e.revision;
  overlay[key] = std::move(e);
  return reply;
}

Result<json> StateModule::PlanDel(const json& params, Overlay& overlay) {
  static constexpr std::string_view kFields[] = {"key", "fence", "lease_id", "expected_version"};
  Params p(params, kFields);
  std::string key = p.Str("key", {.min = 1, .max = core_.limits().max_key_bytes});
  if (!p.ok()) return p.status();
  SHIM_RETURN_IF_ERROR(CheckFenceAndLease(p).status());
  SHIM_RETURN_IF_ERROR(CheckExpected(p, key, overlay));
  if (!Lookup(key, overlay)) return json{{"deleted", false}, {"revision", core_.revision()}};
  overlay[key] = std::nullopt;
  return json{{"deleted", true}, {"revision", PendingRevision()}};
}

void StateModule::Apply(Overlay& overlay) {
  if (overlay.empty()) return;
  core_.NextRevision();
  auto& batch = core_.batch();
  for (auto& [key, entry] : overlay) {
    auto old = kv_.find(key);
    const uint64_t old_lease = old == kv_.end() ? 0 : old->second.lease_id;
    if (entry) {
      batch.Put(Family::kKv, KvKey(key), EncodeKvRecord(*entry));
      if (entry->expires_at_ms != 0) SchedulePurge(key, entry->expires_at_ms);
      IndexLease(key, old_lease, entry->lease_id);
      // Reuses the lookup above: one descent of the key map per write.
      if (old != kv_.end()) {
        old->second = std::move(*entry);
      } else {
        kv_.emplace(key, std::move(*entry));
      }
    } else if (old != kv_.end()) {
      batch.Delete(Family::kKv, KvKey(key));
      IndexLease(key, old_lease, 0);
      kv_.erase(old);
    }
  }
}

void StateModule::RunSingle(Call& call, Result<json> (StateModule::*plan)(const json&, Overlay&)) {
  patch_work_ = 0;
  Overlay overlay;
  Result<json> result = (this->*plan)(call.params, overlay);
  if (result.ok()) Apply(overlay);
  core_.Reply(call.reply, std::move(result));
}

void StateModule::Set(Call& call) { RunSingle(call, &StateModule::PlanSet); }
void StateModule::Patch(Call& call) { RunSingle(call, &StateModule::PlanPatch); }
void StateModule::Incr(Call& call) { RunSingle(call, &StateModule::PlanIncr); }
void StateModule::Del(Call& call) { RunSingle(call, &StateModule::PlanDel); }

void StateModule::Get(Call& call) {
  static constexpr std::string_view kFields[] = {"key"};
  Params p(call.params, kFields);
  std::string key = p.Str("key", {.min = 1, .max = core_.limits().max_key_bytes});
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  const KvEntry* e = Lookup(key, {});
  if (!e) return core_.Reply(call.reply, json(nullptr));
  if (call.reply_encoded) return core_.ReplyEncoded(call.reply_encoded, EncodeGetResult(key, *e));
  Result<json> value = e->Value(key);
  if (!value.ok()) return core_.Reply(call.reply, value.status());
  core_.Reply(call.reply,
              json{{"key", key},
                   {"value", std::move(value).value()},
                   {"version", e->version},
                   {"revision", e->revision},
                   {"expires_at_ms", e->expires_at_ms ? json(e->expires_at_ms) : json(nullptr)},
                   {"lease_id", e->lease_id ? json(e->lease_id) : json(nullptr)}});
}

void StateModule::List(Call& call) {
  const auto& lim = core_.limits();
  static constexpr std::string_view kFields[] = {"prefix", "after", "limit"};
  Params p(call.params, kFields);
  std::string prefix = p.OptStr("prefix", {.max = lim.max_key_bytes}).value_or("");
  auto after = p.OptStr("after", {.max = lim.max_key_bytes});
  int64_t limit = p.Limit(lim.max_list_limit, 100);
  if (!p.ok()) return core_.Reply(call.reply, p.status());

  // The page: up to `limit` live keys, and no more once their values fill
  // the reply budget (a page of 1 MiB values holds a few, not a thousand).
  auto it = (after && *after >= prefix) ? kv_.upper_bound(*after) : kv_.lower_bound(prefix);
  const int64_t now = core_.clock().NowMs();
  std::vector<decltype(it)> page;
  ReplyBudget budget(lim.max_reply_bytes);
  bool more = false;
  for (; it != kv_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const KvEntry& e = it->second;
    if (e.expires_at_ms != 0 && e.expires_at_ms <= now) continue;
    if (e.lease_id != 0 && !leases_.Exists(e.lease_id)) continue;
    if (static_cast<int64_t>(page.size()) == limit || budget.full()) {
      more = true;
      break;
    }
    page.push_back(it);
    budget.Add(it->first.size() + e.value_json.size() +
               48);  // + the item's member names and version
  }
  const std::string* next = more ? &page.back()->first : nullptr;
  if (call.reply_encoded) {
    // The values go into the reply as the stored text they are: no parse.
    std::string out = R"({"items":[)";
    for (auto item : page) {
      if (out.back() != '[') out += ',';
      out += R"({"key":)";
      AppendJsonString(out, item->first);
      out += R"(,"value":)";
      out += item->second.value_json;
      out += R"(,"version":)";
      out += std::to_string(item->second.version);
      out += '}';
    }
    out += R"(],"next":)";
    if (next) {
      AppendJsonString(out, *next);
    } else {
      out += "null";
    }
    out += '}';
    return core_.ReplyEncoded(call.reply_encoded, std::move(out));
  }
  json items = json::array();
  for (auto item : page) {
    Result<json> value = item->second.Value(item->first);
    if (!value.ok()) return core_.Reply(call.reply, value.status());
    items.push_back({{"key", item->first},
                     {"value", std::move(value).value()},
                     {"version", item->second.version}});
  }
  core_.Reply(call.reply,
              json{{"items", std::move(items)}, {"next", next ? json(*next) : json(nullptr)}});
}

void StateModule::Txn(Call& call) {
  static constexpr std::string_view kFields[] = {"compare", "success", "failure"};
  static constexpr std::string_view kCompareFields[] = {"key", "version"};
  Params p(call.params, kFields);
  const json* compare = p.OptArray("compare");
  const json* success = p.Array("success");
  const json* failure = p.OptArray("failure");
  if (!p.ok()) return core_.Reply(call.reply, p.status());
  size_t total =
      (compare ? compare->size() : 0) + success->size() + (failure ? failure->size() : 0);
  if (total > core_.limits().max_txn_ops) {
    return core_.Reply(call.reply,
                       Status::TooLarge("txn has " + std::to_string(total) + " compares and ops",
                                        core_.limits().max_txn_ops));
  }

  patch_work_ = 0;
  Overlay overlay;
  bool succeeded = true;
  if (compare) {
    for (size_t i = 0; i < compare->size(); ++i) {
      const json& c = (*compare)[i];
      std::string field = "compare[" + std::to_string(i) + "]";
      Params cp(c, kCompareFields);
      std::string key = cp.Str("key", {.min = 1, .max = core_.limits().max_key_bytes});
      int64_t version = cp.Int("version", {.min = 0});
      if (!c.is_object())
        return core_.Reply(call.reply, Status::InvalidParams(field, field + " must be an object"));
      if (!cp.ok()) {
        return core_.Reply(call.reply, Status::InvalidParams(
                                           field + "." + cp.status().details().value("field", ""),
                                           field + ": " + cp.status().message()));
      }
      const KvEntry* cur = Lookup(key, overlay);
      if ((cur ? cur->version : 0) != static_cast<uint64_t>(version)) succeeded = false;
    }
  }

  const json* ops = succeeded ? success : failure;
  const char* branch = succeeded ? "success" : "failure";
  json results = json::array();
  if (ops) {
    for (size_t i = 0; i < ops->size(); ++i) {
      const json& op = (*ops)[i];
      std::string field = std::string(branch) + "[" + std::to_string(i) + "]";
      if (!op.is_object() || op.size() != 1) {
        return core_.Reply(call.reply,
                           Status::InvalidParams(
                               field, field + " must be one of {\"set\":{...}}, {\"del\":{...}}, "
                                              "{\"incr\":{...}}, {\"patch\":{...}}"));
      }
      // Not `*op.items().begin()`: that is a reference into a temporary
      // iteration proxy, dangling after the statement (ASan: stack use
      // after scope; found by tests/fuzz/jsonrpc_fuzz).
      const auto op_it = op.begin();
      const std::string& name = op_it.key();
      const json& args = op_it.value();
      Result<json> (StateModule::*plan)(const json&, Overlay&) = nullptr;
      if (name == "set") plan = &StateModule::PlanSet;
      if (name == "del") plan = &StateModule::PlanDel;
      if (name == "incr") plan = &StateModule::PlanIncr;
      if (name == "patch") plan = &StateModule::PlanPatch;
      if (!plan || !args.is_object()) {
        return core_.Reply(call.reply,
                           Status::InvalidParams(field, field + ": unknown op '" + name +
                                                            "' or its params are not an object"));
      }
      Result<json> r = (this->*plan)(args, overlay);
      if (!r.ok()) {
        // Nothing was applied: report which op failed, keep its reason.
        Status s = r.status();
        json details = s.details().is_object() ? s.details() : json::object();
        details["op_index"] = i;
        if (details.contains("field"))
          details["field"] = field + "." + name + "." + details["field"].get<std::string>();
        return core_.Reply(call.reply,
                           Status(s.code(), field + ": " + s.message(), std::move(details)));
      }
      results.push_back(std::move(r).value());
    }
  }
  Apply(overlay);
  core_.Reply(call.reply, json{{"succeeded", succeeded},
                               {"results", std::move(results)},
                               {"revision", core_.revision()}});
}

void StateModule::SchedulePurge(const std::string& key, int64_t expires_at_ms) {
  core_.wall_timers().Schedule(expires_at_ms,
                               [this, key, expires_at_ms] { Purge(key, expires_at_ms); });
}

void StateModule::Purge(const std::string& key, int64_t expires_at_ms) {
  auto it = kv_.find(key);
  // A key rewritten since this timer was set has another expiry (or none).
  if (it == kv_.end() || it->second.expires_at_ms != expires_at_ms) return;
  if (expires_at_ms > core_.clock().NowMs()) return;
  core_.NextRevision();
  core_.batch().Delete(Family::kKv, KvKey(key));
  IndexLease(key, it->second.lease_id, 0);
  kv_.erase(it);
}

}  // namespace shim::engine
