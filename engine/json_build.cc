#include "engine/json_build.h"

#include <algorithm>
#include <string>
#include <utility>

namespace shim {

using nlohmann::json;

namespace {

size_t Digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

size_t ScalarBytes(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return 4;
    case json::value_t::boolean:
      return v.get<bool>() ? 4 : 5;
    case json::value_t::string:
      return v.get_ref<const std::string&>().size() + 2;
    case json::value_t::number_unsigned:
      return Digits(v.get<uint64_t>());
    case json::value_t::number_integer: {
      const int64_t i = v.get<int64_t>();
      // The magnitude without overflowing at INT64_MIN.
      return i < 0 ? 1 + Digits(static_cast<uint64_t>(-(i + 1)) + 1)
                   : Digits(static_cast<uint64_t>(i));
    }
    case json::value_t::number_float:
      return 3;  // the shortest a double is written: "0.0"
    default:
      return 2;  // binary: never read from JSON text
  }
}

// `"key":value` in an object, without the comma.
size_t MemberBytes(const std::string& key, size_t value_bytes) {
  return key.size() + 3 + value_bytes;
}

Status TooBig(size_t max_bytes) {
  return Status::TooLarge("the value would grow over " + std::to_string(max_bytes) +
                              " bytes encoded (checked while it is built)",
                          max_bytes);
}

// A pointer or path as it goes into a message: long ones are cut.
std::string Shown(std::string_view path) {
  constexpr size_t kShown = 200;
  std::string out = "'";
  out += path.substr(0, kShown);
  if (path.size() > kShown) out += "...";
  return out + "'";
}

// The value's weight as the walks keep it, and the checks against the limits.
class Budget {
 public:
  Budget(size_t bytes, const JsonBuildLimits& limits) : bytes_(bytes), limits_(limits) {}

  size_t bytes() const { return bytes_; }
  const JsonBuildLimits& limits() const { return limits_; }

  // The value's weight becomes `bytes`: refused over the limit, before the
  // caller changes anything.
  Status Resize(size_t bytes) {
    if (bytes > limits_.max_bytes) return TooBig(limits_.max_bytes);
    bytes_ = bytes;
    return Status::Ok();
  }
  void Shrink(size_t by) { bytes_ -= std::min(by, bytes_); }
  // A value `w` placed at `level` (the number of levels above it).
  Status CheckDepth(size_t level, const JsonWeight& w) const {
    if (level + w.depth > limits_.max_depth) return JsonTooDeep(limits_.max_depth);
    return Status::Ok();
  }

 private:
  size_t bytes_;
  const JsonBuildLimits& limits_;
};

Status TooMuchWork(size_t max_work) {
  return Status(StatusCode::kTooLarge,
                "the patches would read, walk, copy or shift more than " +
                    std::to_string(max_work) +
                    " bytes of JSON in all; split them into smaller requests",
                {{"limit", max_work}});
}

// ------------------------------------------------------------ JSON Patch

class PatchRun {
 public:
  PatchRun(json& doc, const JsonBuildLimits& limits)
      : doc_(doc),
        budget_(WeighJson(doc).bytes, limits),
        work_(limits.work ? *limits.work : own_work_) {
    work_ += budget_.bytes();
  }

  Status Run(const json& ops);

 private:
  using Path = std::vector<std::string>;

  Status Error(std::string what) const {
    return Status::InvalidParams("ops", "ops[" + std::to_string(index_) + "]: " + std::move(what));
  }
  Status AddWork(size_t units) {
    work_ += units;
    if (work_ > budget_.limits().max_work) return TooMuchWork(budget_.limits().max_work);
    return Status::Ok();
  }
  JsonWeight Weigh(const json& v, size_t stop_bytes = std::numeric_limits<size_t>::max(),
                   size_t stop_depth = std::numeric_limits<size_t>::max()) {
    const JsonWeight w = WeighJson(v, stop_bytes, stop_depth);
    work_ += w.bytes;  // checked by the next AddWork
    return w;
  }

  Status Member(const json& op, const char* name, const std::string** out) const;
  Status ParsePath(const std::string& text, Path* path) const;
  Result<json*> Resolve(const Path& path, size_t levels, const std::string& text);
  Status Insert(const Path& path, const std::string& text, json value, const JsonWeight& w);
  Result<json> Take(const Path& path, const std::string& text, JsonWeight* w);

  json& doc_;
  Budget budget_;
  size_t own_work_ = 0;
  size_t& work_;      // limits.work, or own_work_
  size_t index_ = 0;  // of the op being applied
};

Status PatchRun::Member(const json& op, const char* name, const std::string** out) const {
  auto it = op.find(name);
  if (it == op.end() || !it->is_string())
    return Error(std::string("needs \"") + name + "\", a string");
  *out = &it->get_ref<const std::string&>();
  return Status::Ok();
}

// RFC 6901: "" is the whole value; otherwise '/' before each reference
// token, in which "~1" stands for '/' and "~0" for '~'.
Status PatchRun::ParsePath(const std::string& text, Path* path) const {
  path->clear();
  if (text.empty()) return Status::Ok();
  if (text[0] != '/') return Error("path " + Shown(text) + " must be empty or start with '/'");
  // A path longer than any value is deep cannot resolve: refused before
  // its tokens take memory.
  if (static_cast<size_t>(std::count(text.begin(), text.end(), '/')) > kMaxShimJsonDepth + 1) {
    return Error("path " + Shown(text) + " has more levels than any value can have");
  }
  std::string token;
  for (size_t i = 1; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '/') {
      path->push_back(std::move(token));
      token.clear();
    } else if (text[i] == '~') {
      const char next = i + 1 < text.size() ? text[i + 1] : '\0';
      if (next != '0' && next != '1')
        return Error("path " + Shown(text) + ": '~' must be followed by 0 or 1");
      token += next == '0' ? '~' : '/';
      ++i;
    } else {
      token += text[i];
    }
  }
  return Status::Ok();
}

// An array index token: digits without a leading zero, below `bound`.
bool ArrayIndex(const std::string& token, size_t bound, size_t* out) {
  if (token.empty() || token.size() > 19 || (token.size() > 1 && token[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v >= bound) return false;
  *out = static_cast<size_t>(v);
  return true;
}

// The value the first `levels` tokens of `path` lead to.
Result<json*> PatchRun::Resolve(const Path& path, size_t levels, const std::string& text) {
  json* at = &doc_;
  for (size_t i = 0; i < levels; ++i) {
    const std::string& token = path[i];
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end())
        return Error("path " + Shown(text) + " does not exist (no member '" + token + "')");
      at = &*it;
    } else if (at->is_array()) {
      size_t index;
      if (!ArrayIndex(token, at->size(), &index)) {
        return Error("path " + Shown(text) + " does not exist (no index '" + token +
                     "' in an array of " + std::to_string(at->size()) + ")");
      }
      at = &(*at)[index];
    } else {
      return Error("path " + Shown(text) + " does not exist (a " + at->type_name() +
                   " has no members)");
    }
  }
  return at;
}

// Places `value` (weighing `w`) at `path`, as RFC 6902 "add" does.
Status PatchRun::Insert(const Path& path, const std::string& text, json value,
                        const JsonWeight& w) {
  SHIM_RETURN_IF_ERROR(budget_.CheckDepth(path.size(), w));
  if (path.empty()) {
    SHIM_RETURN_IF_ERROR(budget_.Resize(w.bytes));
    doc_ = std::move(value);
    return Status::Ok();
  }
  SHIM_ASSIGN_OR_RETURN(json * parent, Resolve(path, path.size() - 1, text));
  const std::string& last = path.back();
  if (parent->is_null()) {
    budget_.Shrink(ScalarBytes(*parent) - 2);  // null becomes {}
    *parent = json::object();
  }
  if (parent->is_object()) {
    auto it = parent->find(last);
    if (it != parent->end()) {
      const JsonWeight old = Weigh(*it);
      SHIM_RETURN_IF_ERROR(AddWork(0));
      SHIM_RETURN_IF_ERROR(
          budget_.Resize(budget_.bytes() - std::min(old.bytes, budget_.bytes()) + w.bytes));
      *it = std::move(value);
    } else {
      SHIM_RETURN_IF_ERROR(
          budget_.Resize(budget_.bytes() + MemberBytes(last, w.bytes) + (parent->empty() ? 0 : 1)));
      parent->emplace(last, std::move(value));
    }
    return Status::Ok();
  }
  if (parent->is_array()) {
    size_t index = parent->size();
    if (last != "-" && !ArrayIndex(last, parent->size() + 1, &index)) {
      return Error("path " + Shown(text) + ": no index '" + last + "' to add at in an array of " +
                   std::to_string(parent->size()));
    }
    SHIM_RETURN_IF_ERROR(AddWork(parent->size() - index));  // the elements after it move
    SHIM_RETURN_IF_ERROR(budget_.Resize(budget_.bytes() + w.bytes + (parent->empty() ? 0 : 1)));
    parent->insert(parent->begin() + static_cast<std::ptrdiff_t>(index), std::move(value));
    return Status::Ok();
  }
  return Error("path " + Shown(text) + ": cannot add under a " + parent->type_name());
}

// Removes the value at `path` and returns it; `w` gets its weight.
Result<json> PatchRun::Take(const Path& path, const std::string& text, JsonWeight* w) {
  if (path.empty()) return Error("cannot remove or move the whole value");
  SHIM_ASSIGN_OR_RETURN(json * parent, Resolve(path, path.size() - 1, text));
  const std::string& last = path.back();
  if (parent->is_object()) {
    auto it = parent->find(last);
    if (it == parent->end())
      return Error("path " + Shown(text) + " does not exist (no member '" + last + "')");
    *w = Weigh(*it);
    SHIM_RETURN_IF_ERROR(AddWork(0));
    json out = std::move(*it);
    parent->erase(it);
    budget_.Shrink(MemberBytes(last, w->bytes) + (parent->empty() ? 0 : 1));
    return out;
  }
  size_t index;
  if (!parent->is_array() || !ArrayIndex(last, parent->size(), &index)) {
    return Error("path " + Shown(text) + " does not exist");
  }
  *w = Weigh((*parent)[index]);
  SHIM_RETURN_IF_ERROR(AddWork(parent->size() - index - 1));  // the elements after it move
  json out = std::move((*parent)[index]);
  parent->erase(parent->begin() + static_cast<std::ptrdiff_t>(index));
  budget_.Shrink(w->bytes + (parent->empty() ? 0 : 1));
  return out;
}

Status PatchRun::Run(const json& ops) {
  if (budget_.bytes() > budget_.limits().max_bytes) return TooBig(budget_.limits().max_bytes);
  if (!ops.is_array())
    return Status::InvalidParams("ops", "ops must be an array of JSON Patch operations");
  const JsonBuildLimits& lim = budget_.limits();
  Path path, from;
  for (index_ = 0; index_ < ops.size(); ++index_) {
    const json& op = ops[index_];
    if (!op.is_object()) return Error("an operation must be an object");
    const std::string *name, *path_text;
    SHIM_RETURN_IF_ERROR(Member(op, "op", &name));
    SHIM_RETURN_IF_ERROR(Member(op, "path", &path_text));
    SHIM_RETURN_IF_ERROR(ParsePath(*path_text, &path));
    const json* value = nullptr;
    if (*name == "add" || *name == "replace" || *name == "test") {
      auto it = op.find("value");
      if (it == op.end()) return Error("\"" + *name + "\" needs \"value\"");
      value = &*it;
    }
    const std::string* from_text = nullptr;
    if (*name == "move" || *name == "copy") {
      SHIM_RETURN_IF_ERROR(Member(op, "from", &from_text));
      SHIM_RETURN_IF_ERROR(ParsePath(*from_text, &from));
    }

    if (*name == "add") {
      const JsonWeight w = Weigh(*value, lim.max_bytes, lim.max_depth);
      SHIM_RETURN_IF_ERROR(AddWork(0));
      if (w.bytes > lim.max_bytes) return TooBig(lim.max_bytes);
      SHIM_RETURN_IF_ERROR(Insert(path, *path_text, *value, w));
    } else if (*name == "remove") {
      JsonWeight w;
      SHIM_RETURN_IF_ERROR(Take(path, *path_text, &w).status());
    } else if (*name == "replace") {
      SHIM_ASSIGN_OR_RETURN(json * target, Resolve(path, path.size(), *path_text));
      const JsonWeight w = Weigh(*value, lim.max_bytes, lim.max_depth);
      const JsonWeight old = Weigh(*target);
      SHIM_RETURN_IF_ERROR(AddWork(0));
      SHIM_RETURN_IF_ERROR(budget_.CheckDepth(path.size(), w));
      SHIM_RETURN_IF_ERROR(
          budget_.Resize(budget_.bytes() - std::min(old.bytes, budget_.bytes()) + w.bytes));
      *target = *value;
    } else if (*name == "move") {
      // RFC 6902: a remove at "from", then an add at "path" of that value.
      JsonWeight w;
      SHIM_ASSIGN_OR_RETURN(json moved, Take(from, *from_text, &w));
      SHIM_RETURN_IF_ERROR(Insert(path, *path_text, std::move(moved), w));
    } else if (*name == "copy") {
      SHIM_ASSIGN_OR_RETURN(json * source, Resolve(from, from.size(), *from_text));
      // Weighed before it is copied: a copy over the limit is never made.
      const JsonWeight w = Weigh(*source, lim.max_bytes, lim.max_depth);
      SHIM_RETURN_IF_ERROR(AddWork(0));
      if (w.bytes > lim.max_bytes) return TooBig(lim.max_bytes);
      SHIM_RETURN_IF_ERROR(budget_.CheckDepth(path.size(), w));
      SHIM_RETURN_IF_ERROR(Insert(path, *path_text, *source, w));
    } else if (*name == "test") {
      SHIM_ASSIGN_OR_RETURN(json * target, Resolve(path, path.size(), *path_text));
      if (*target != *value)
        return Error("test failed: the value at " + Shown(*path_text) + " differs");
    } else {
      return Error("unknown op '" + *name + "' (want add, remove, replace, move, copy or test)");
    }
  }
  return Status::Ok();
}

// ------------------------------------------------------------ merging

enum class Nulls { kDelete, kKeep };

// Merges `from` into `into` without recursion. Objects merge member by
// member. With Nulls::kDelete (RFC 7396) a null member removes the member,
// and an object merged onto a non-object starts from {}; with Nulls::kKeep
// (aggregate "merge") nulls are values, and a pair that is not two objects
// is replaced by a copy of `from`.
Status Merge(json& into, const json& from, Nulls nulls, Budget& budget) {
  const JsonBuildLimits& lim = budget.limits();
  struct Step {
    json* into;
    const json* from;
    size_t level;  // levels above `into`
  };
  std::vector<Step> stack{{&into, &from, 0}};
  while (!stack.empty()) {
    const Step step = stack.back();
    stack.pop_back();
    json& to = *step.into;
    const json& patch = *step.from;
    if (!patch.is_object() || (!to.is_object() && nulls == Nulls::kKeep)) {
      // Weighed before it is copied: a copy over the limit is never made.
      const JsonWeight w = WeighJson(patch, lim.max_bytes, lim.max_depth);
      if (w.bytes > lim.max_bytes) return TooBig(lim.max_bytes);
      SHIM_RETURN_IF_ERROR(budget.CheckDepth(step.level, w));
      const JsonWeight old = WeighJson(to);
      SHIM_RETURN_IF_ERROR(
          budget.Resize(budget.bytes() - std::min(old.bytes, budget.bytes()) + w.bytes));
      to = patch;
      continue;
    }
    if (!to.is_object()) {
      SHIM_RETURN_IF_ERROR(budget.CheckDepth(step.level, JsonWeight{0, 1}));
      const JsonWeight old = WeighJson(to);
      SHIM_RETURN_IF_ERROR(budget.Resize(budget.bytes() - std::min(old.bytes, budget.bytes()) + 2));
      to = json::object();
    }
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      const std::string& key = it.key();
      auto existing = to.find(key);
      if (nulls == Nulls::kDelete && it->is_null()) {
        if (existing != to.end()) {
          const JsonWeight old = WeighJson(*existing);
          to.erase(existing);
          budget.Shrink(MemberBytes(key, old.bytes) + (to.empty() ? 0 : 1));
        }
        continue;
      }
      if (existing == to.end()) {
        // A null placeholder (4 bytes), which the step below replaces or merges into.
        SHIM_RETURN_IF_ERROR(
            budget.Resize(budget.bytes() + MemberBytes(key, 4) + (to.empty() ? 0 : 1)));
        existing = to.emplace(key, nullptr).first;
      }
      // A member's address in the object (a std::map) stays put while its
      // siblings come and go.
      stack.push_back({&*existing, &*it, step.level + 1});
    }
  }
  return Status::Ok();
}

}  // namespace

Status ChargeJsonWork(const JsonBuildLimits& limits, size_t units) {
  *limits.work += units;
  if (*limits.work > limits.max_work) return TooMuchWork(limits.max_work);
  return Status::Ok();
}

JsonWeight WeighJson(const json& value, size_t stop_bytes, size_t stop_depth) {
  JsonWeight w;
  if (!value.is_structured()) {
    w.bytes = ScalarBytes(value);
    return w;
  }
  std::vector<std::pair<const json*, size_t>> containers{{&value, 1}};
  while (!containers.empty()) {
    const auto [v, level] = containers.back();
    containers.pop_back();
    w.depth = std::max(w.depth, level);
    w.bytes += 2 + (v->empty() ? 0 : v->size() - 1);
    const bool object = v->is_object();
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (object) w.bytes += it.key().size() + 3;
      if (it->is_structured()) {
        containers.emplace_back(&*it, level + 1);
      } else {
        w.bytes += ScalarBytes(*it);
      }
      if (w.bytes > stop_bytes) return w;
    }
    if (w.depth > stop_depth) return w;
  }
  return w;
}

Status ApplyJsonPatch(json& doc, const json& ops, const JsonBuildLimits& limits) {
  PatchRun run(doc, limits);
  return run.Run(ops);
}

Status ApplyMergePatch(json& doc, const json& patch, const JsonBuildLimits& limits) {
  const JsonWeight w = WeighJson(doc);
  if (w.bytes > limits.max_bytes) return TooBig(limits.max_bytes);
  Budget budget(w.bytes, limits);
  return Merge(doc, patch, Nulls::kDelete, budget);
}

Result<json> DeepMergeJson(const std::vector<const json*>& parts, const JsonBuildLimits& limits) {
  json out = json::object();
  Budget budget(2, limits);
  for (const json* part : parts) SHIM_RETURN_IF_ERROR(Merge(out, *part, Nulls::kKeep, budget));
  return out;
}

Result<json> ConcatenateJson(const std::vector<const json*>& parts, const JsonBuildLimits& limits) {
  json out = json::array();
  Budget budget(2, limits);
  for (const json* part : parts) {
    const JsonWeight w = WeighJson(*part, limits.max_bytes, limits.max_depth);
    SHIM_RETURN_IF_ERROR(budget.CheckDepth(1, w));
    SHIM_RETURN_IF_ERROR(budget.Resize(budget.bytes() + w.bytes + (out.empty() ? 0 : 1)));
    out.push_back(*part);
  }
  return out;
}

}  // namespace shim
