#include "tests/fault/crash_loop_tally.h"

#include <gtest/gtest.h>

#include <iostream>
#include <sstream>

namespace shim::fault {

bool Tally::Expect(bool ok, const std::string& category, const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ok) {
    ++passed_[category];
    return true;
  }
  ++failed_;
  ++failed_by_[category];
  if (!expect_violations_) {
    ADD_FAILURE() << "[" << category << "] " << what;
  } else if (reported_++ < 10) {
    std::cout << "[ fault ] caught, as expected: [" << category << "] " << what << std::endl;
  }
  return false;
}

void Tally::Pass(const std::string& category, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  passed_[category] += n;
}

void Tally::Note(const std::string& what, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  notes_[what] += n;
}

void Tally::Acked(Load load, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  acked_[static_cast<size_t>(load)] += n;
}

void Tally::Refused(Load load) {
  std::lock_guard<std::mutex> lock(mu_);
  ++refused_[static_cast<size_t>(load)];
}

uint64_t Tally::acked(Load load) {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_[static_cast<size_t>(load)];
}

uint64_t Tally::passed() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (const auto& [k, v] : passed_) n += v;
  return n;
}

uint64_t Tally::failed() {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

std::map<std::string, uint64_t> Tally::failed_by_category() {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_by_;
}

std::string Tally::Summary() {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream s;
  for (const auto& [k, v] : passed_) {
    s << "\n    " << k << ": " << v;
    if (auto f = failed_by_.find(k); f != failed_by_.end()) s << " (failed: " << f->second << ")";
  }
  for (const auto& [k, v] : failed_by_) {
    if (!passed_.count(k)) s << "\n    " << k << ": 0 (failed: " << v << ")";
  }
  s << "\n  events seen:";
  for (const auto& [k, v] : notes_) s << "\n    " << k << ": " << v;
  return s.str();
}

std::string Tally::LoadSummary() {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream s;
  for (size_t i = 0; i < kLoadInfo.size(); ++i) {
    s << "\n    " << kLoadInfo[i].name << ": " << acked_[i];
    if (refused_[i]) s << " (" << refused_[i] << " refused, as allowed)";
  }
  return s.str();
}

}  // namespace shim::fault
