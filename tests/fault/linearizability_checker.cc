#include "tests/fault/linearizability_checker.h"

#include <algorithm>
#include <memory>
#include <set>
#include <sstream>
#include <unordered_set>

namespace shim::fault::lin {

using nlohmann::json;

namespace {

// The sequential model of one key. A missing key has version 0, which is
// what expected_version and txn compares mean by 0.
struct State {
  bool exists = false;
  json value;
  uint64_t version = 0;

  std::string Encode() const { return exists ? std::to_string(version) + ":" + value.dump() : "-"; }
};

bool IsInt(const json& v) {
  return v.is_number_integer() &&
         !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX));
}

// One step of an operation's effect on a key; an operation is a sequence of
// steps (a txn may touch a key several times), and each step both checks
// what the reply said (when there was one) and moves the state.
struct Step {
  enum Kind {
    kRequireVersion,
    kRequireNotVersion,
    kIncrFails,
    kRead,
    kSet,
    kIncr,
    kDel
  } kind = kRead;
  bool known = false;    // the reply gave this step's outcome
  uint64_t version = 0;  // require: the version; read/set/incr: the version reported
  bool exists = false;   // read: the key was there; del: `deleted`
  json value;            // read: value seen; set: value written; incr: resulting value
  int64_t by = 1;        // incr
};

using Alternative = std::vector<Step>;

Step MakeStep(Step::Kind kind, uint64_t version = 0) {
  Step s;
  s.kind = kind;
  s.version = version;
  return s;
}

struct KeyOp {
  size_t index = 0;  // into the history
  int64_t invoke = 0, response = kNever;
  std::vector<Alternative> alternatives;  // ways it may have happened (an empty one: not at all)
};

bool ApplyStep(const Step& s, State& st) {
  switch (s.kind) {
    case Step::kRequireVersion:
      return st.version == s.version;
    case Step::kRequireNotVersion:
      return st.version != s.version;
    case Step::kIncrFails: {
      if (!st.exists) return false;
      if (!IsInt(st.value)) return true;
      int64_t sum;
      return __builtin_add_overflow(st.value.get<int64_t>(), s.by, &sum);
    }
    case Step::kRead:
      if (!s.exists) return !st.exists;
      return st.exists && st.version == s.version && st.value == s.value;
    case Step::kSet: {
      const uint64_t v = st.exists ? st.version + 1 : 1;
      if (s.known && v != s.version) return false;
      st.exists = true;
      st.value = s.value;
      st.version = v;
      return true;
    }
    case Step::kIncr: {
      int64_t base = 0;
      if (st.exists) {
        if (!IsInt(st.value)) return false;
        base = st.value.get<int64_t>();
      }
      int64_t sum;
      if (__builtin_add_overflow(base, s.by, &sum)) return false;
      const uint64_t v = st.exists ? st.version + 1 : 1;
      if (s.known && (v != s.version || !(s.value == json(sum)))) return false;
      st.exists = true;
      st.value = sum;
      st.version = v;
      return true;
    }
    case Step::kDel:
      if (s.known && s.exists != st.exists) return false;
      st = State{};
      return true;
  }
  return false;
}

bool ApplyAlternative(const Alternative& alt, State& st) {
  for (const Step& s : alt) {
    if (!ApplyStep(s, st)) return false;
  }
  return true;
}

// --- decomposition of a history into per-key operations ------------------

struct Decomposer {
  std::map<std::string, std::vector<KeyOp>> per_key;
  std::string error;

  static std::optional<uint64_t> Expected(const json& params) {
    auto it = params.find("expected_version");
    if (it == params.end() || it->is_null()) return std::nullopt;
    return it->get<uint64_t>();
  }

  // Steps of a single-key write (set/incr/del params), its outcome `result`
  // (null when unknown).
  static Alternative WriteSteps(const std::string& method, const json& params, const json* result) {
    Alternative alt;
    if (auto e = Expected(params)) alt.push_back(MakeStep(Step::kRequireVersion, *e));
    Step s;
    s.known = result != nullptr;
    if (method == "set") {
      s.kind = Step::kSet;
      s.value = params.value("value", json(nullptr));
      if (result) s.version = (*result)["version"].get<uint64_t>();
    } else if (method == "incr") {
      s.kind = Step::kIncr;
      s.by = params.value("by", int64_t{1});
      if (result) {
        s.version = (*result)["version"].get<uint64_t>();
        s.value = (*result)["value"];
      }
    } else {
      s.kind = Step::kDel;
      if (result) s.exists = (*result)["deleted"].get<bool>();
    }
    alt.push_back(std::move(s));
    return alt;
  }

  void Add(const std::string& key, size_t index, const Op& op, std::vector<Alternative> alts) {
    KeyOp k;
    k.index = index;
    k.invoke = op.invoke_ns;
    k.response = op.response_ns;
    k.alternatives = std::move(alts);
    per_key[key].push_back(std::move(k));
  }

  void AddSingle(size_t index, const Op& op) {
    const std::string verb = op.method.substr(6);  // after "state."
    const std::string key = op.params.value("key", "");
    if (key.empty()) {
      error = "op without a key: " + Describe(op);
      return;
    }
    if (verb == "get") {
      if (op.lost || op.error) return;  // a read that told nothing
      Step s = MakeStep(Step::kRead);
      s.known = true;
      if (!op.result.is_null()) {
        s.exists = true;
        s.version = op.result["version"].get<uint64_t>();
        s.value = op.result["value"];
      }
      Add(key, index, op, {{s}});
      return;
    }
    if (op.lost) {
      Add(key, index, op, {WriteSteps(verb, op.params, nullptr), {}});
      return;
    }
    if (op.error) {
      if (*op.error == StatusCode::kVersionConflict &&
          op.error_details.contains("current_version")) {
        Add(key, index, op,
            {{MakeStep(Step::kRequireVersion,
                       op.error_details["current_version"].get<uint64_t>())}});
      } else if (*op.error == StatusCode::kTypeMismatch && verb == "incr") {
        Alternative alt;
        if (auto e = Expected(op.params)) alt.push_back(MakeStep(Step::kRequireVersion, *e));
        Step fails = MakeStep(Step::kIncrFails);
        fails.by = op.params.value("by", int64_t{1});
        alt.push_back(fails);
        Add(key, index, op, {alt});
      }
      return;  // any other error: nothing was applied, nothing observed
    }
    Add(key, index, op, {WriteSteps(verb, op.params, &op.result)});
  }

  void AddTxn(size_t index, const Op& op) {
    if (op.error) return;  // rejected whole: nothing applied
    const json compare = op.params.value("compare", json::array());
    const json success = op.params.value("success", json::array());
    const json failure = op.params.value("failure", json::array());
    std::set<std::string> keys;
    std::set<std::string> compare_keys;
    for (const json& c : compare) {
      keys.insert(c["key"].get<std::string>());
      compare_keys.insert(c["key"].get<std::string>());
    }
    for (const json* branch : {&success, &failure}) {
      for (const json& o : *branch) keys.insert(o.begin().value()["key"].get<std::string>());
    }
    // Steps of one branch on one key; `results` null when unknown.
    auto branch_steps = [&](const json& branch, const json* results, const std::string& key) {
      Alternative alt;
      for (size_t i = 0; i < branch.size(); ++i) {
        const auto first = branch[i].begin();  // each op is {"set"|"incr"|"del": {...}}
        const std::string verb = first.key();
        const json& args = first.value();
        if (args["key"] != key) continue;
        const json* r = results ? &(*results)[i] : nullptr;
        Alternative w = WriteSteps(verb, args, r);
        alt.insert(alt.end(), w.begin(), w.end());
      }
      return alt;
    };
    auto compares_hold = [&](const std::string& key) {
      Alternative alt;
      for (const json& c : compare) {
        if (c["key"] == key)
          alt.push_back(MakeStep(Step::kRequireVersion, c["version"].get<uint64_t>()));
      }
      return alt;
    };
    // A failed compare list says something about one key only if it has a
    // single compare, on that key.
    auto compare_failed = [&](const std::string& key) {
      Alternative alt;
      if (compare.size() == 1 && compare[0]["key"] == key) {
        alt.push_back(MakeStep(Step::kRequireNotVersion, compare[0]["version"].get<uint64_t>()));
      }
      return alt;
    };
    for (const std::string& key : keys) {
      if (op.lost) {
        std::vector<Alternative> alts;
        Alternative s = compares_hold(key), sb = branch_steps(success, nullptr, key);
        s.insert(s.end(), sb.begin(), sb.end());
        alts.push_back(std::move(s));
        if (!compare.empty()) {
          Alternative f = compare_failed(key), fb = branch_steps(failure, nullptr, key);
          f.insert(f.end(), fb.begin(), fb.end());
          alts.push_back(std::move(f));
        }
        alts.push_back({});
        Add(key, index, op, std::move(alts));
        continue;
      }
      const bool succeeded = op.result["succeeded"].get<bool>();
      const json& results = op.result["results"];
      Alternative alt = succeeded ? compares_hold(key) : compare_failed(key);
      Alternative b = branch_steps(succeeded ? success : failure, &results, key);
      alt.insert(alt.end(), b.begin(), b.end());
      Add(key, index, op, {std::move(alt)});
    }
  }
};

// --- the search -------------------------------------------------------------

struct Entry {
  bool call = false;
  size_t op = 0;  // index into the key's ops
  int64_t time = 0;
  Entry* match = nullptr;  // call -> its return
  Entry* prev = nullptr;
  Entry* next = nullptr;
};

struct KeyCheck {
  bool ok = false;
  bool gave_up = false;
  uint64_t steps = 0;
  size_t best_depth = 0;
  size_t stuck_op = 0;  // an op the deepest attempt could not place before its response
  State stuck_state;
};

KeyCheck CheckKey(const std::vector<KeyOp>& ops, uint64_t max_steps) {
  KeyCheck out;
  const size_t n = ops.size();
  std::vector<Entry> entries(2 * n);
  std::vector<Entry*> order;
  order.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    Entry& c = entries[2 * i];
    Entry& r = entries[2 * i + 1];
    c.call = true;
    c.op = r.op = i;
    c.time = ops[i].invoke;
    r.time = ops[i].response;
    c.match = &r;
    order.push_back(&c);
    order.push_back(&r);
  }
  // Calls before returns at equal times: touching intervals count as
  // concurrent (the lenient reading; it can only accept more).
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    if (a->time != b->time) return a->time < b->time;
    return a->call && !b->call;
  });
  Entry head;
  Entry* prev = &head;
  for (Entry* e : order) {
    prev->next = e;
    e->prev = prev;
    prev = e;
  }

  auto lift = [](Entry* e) {
    e->prev->next = e->next;
    if (e->next) e->next->prev = e->prev;
    Entry* m = e->match;
    m->prev->next = m->next;
    if (m->next) m->next->prev = m->prev;
  };
  auto unlift = [](Entry* e) {
    Entry* m = e->match;
    m->prev->next = m;
    if (m->next) m->next->prev = m;
    e->prev->next = e;
    if (e->next) e->next->prev = e;
  };

  struct Frame {
    Entry* entry;
    State state;
    size_t alt;
  };
  std::vector<Frame> stack;
  std::vector<uint64_t> linearized((n + 63) / 64, 0);
  std::unordered_set<std::string> cache;
  auto cache_key = [&](const State& st) {
    std::string k(reinterpret_cast<const char*>(linearized.data()),
                  linearized.size() * sizeof(uint64_t));
    k += st.Encode();
    return k;
  };

  State state;
  Entry* entry = head.next;
  size_t next_alt = 0;
  while (head.next) {
    if (++out.steps > max_steps) {
      out.gave_up = true;
      return out;
    }
    if (entry->call) {
      const KeyOp& op = ops[entry->op];
      bool moved = false;
      for (size_t a = next_alt; a < op.alternatives.size(); ++a) {
        State next = state;
        if (!ApplyAlternative(op.alternatives[a], next)) continue;
        linearized[entry->op / 64] |= uint64_t{1} << (entry->op % 64);
        if (!cache.insert(cache_key(next)).second) {
          linearized[entry->op / 64] &= ~(uint64_t{1} << (entry->op % 64));
          continue;
        }
        stack.push_back({entry, std::move(state), a});
        state = std::move(next);
        lift(entry);
        entry = head.next;
        moved = true;
        break;
      }
      next_alt = 0;
      if (!moved) entry = entry->next;
      continue;
    }
    // A return whose call is still pending: that op had to be placed before
    // here. Undo the last placement and try its next way.
    if (stack.size() >= out.best_depth) {
      out.best_depth = stack.size();
      out.stuck_op = entry->op;
      out.stuck_state = state;
    }
    if (stack.empty()) return out;
    Frame top = std::move(stack.back());
    stack.pop_back();
    state = std::move(top.state);
    linearized[top.entry->op / 64] &= ~(uint64_t{1} << (top.entry->op % 64));
    unlift(top.entry);
    entry = top.entry;
    next_alt = top.alt + 1;
  }
  out.ok = true;
  return out;
}

}  // namespace

std::string Describe(const Op& op) {
  std::ostringstream s;
  s << "client " << op.client << " " << op.method << " " << op.params.dump() << " -> ";
  if (op.lost) {
    s << "(no reply)";
  } else if (op.error) {
    s << "error " << StatusCodeReason(*op.error) << " " << op.error_details.dump();
  } else {
    s << op.result.dump();
  }
  s << " [" << op.invoke_ns / 1000 << " us .. ";
  if (op.response_ns == kNever) {
    s << "never";
  } else {
    s << op.response_ns / 1000 << " us";
  }
  s << "]";
  return s.str();
}

CheckResult Check(const std::vector<Op>& history, const CheckOptions& options) {
  CheckResult result;
  Decomposer d;
  for (size_t i = 0; i < history.size(); ++i) {
    const Op& op = history[i];
    if (op.lost && op.invoke_ns >= op.response_ns) continue;  // sent after the server was gone
    if (op.method == "state.txn") {
      d.AddTxn(i, op);
    } else if (op.method == "state.get" || op.method == "state.set" || op.method == "state.incr" ||
               op.method == "state.del") {
      d.AddSingle(i, op);
    } else {
      d.error = "not a state operation: " + Describe(op);
    }
    if (!d.error.empty()) {
      result.ok = false;
      result.message = d.error;
      return result;
    }
  }
  for (const auto& [key, ops] : d.per_key) {
    ++result.keys;
    result.ops += ops.size();
    KeyCheck k = CheckKey(ops, options.max_steps_per_key);
    result.steps += k.steps;
    if (k.ok) continue;
    result.ok = false;
    result.key = key;
    std::ostringstream m;
    if (k.gave_up) {
      m << "key '" << key << "': gave up after " << k.steps << " search steps (" << ops.size()
        << " ops); undecided, not a pass";
    } else {
      const Op& stuck = history[ops[k.stuck_op].index];
      m << "key '" << key << "' is not linearizable (" << ops.size() << " ops): at best "
        << k.best_depth
        << " ops could be ordered, and then this one could not take effect before its reply: "
        << Describe(stuck) << "; the key was then " << k.stuck_state.Encode()
        << " (version:value). Ops overlapping it:";
      const KeyOp& s = ops[k.stuck_op];
      int shown = 0;
      for (const KeyOp& o : ops) {
        if (&o == &s || o.response < s.invoke - 1'000'000 || o.invoke > s.response) continue;
        if (++shown > 12) break;
        m << "\n  " << Describe(history[o.index]);
      }
    }
    result.message = m.str();
    return result;
  }
  return result;
}

}  // namespace shim::fault::lin
