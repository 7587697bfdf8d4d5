#include "base/status.h"

#include "base/json_text.h"

namespace shim {

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeReason(code_));
  s += ": ";
  s += message_;
  if (!details_.is_null()) {
    s += " ";
    s += DumpCompact(details_);
  }
  return s;
}

}  // namespace shim
