#include "tests/support/sync_host.h"

#include <utility>

namespace shim::testing {

namespace {

// Bounds on the loops that wait for the engine to rest. What runs after a
// group lands may write and so open the next group, which settles within a
// few; timers can stay due for many turns (a long task cascade runs one
// slice per turn).
constexpr int kMaxGroupsPerPump = 100;
constexpr int kMaxIdleRounds = 100'000;

}  // namespace

Result<std::unique_ptr<SyncHost>> SyncHost::Open(const storage::StoreOptions& store_options,
                                                 engine::EngineOptions engine_options,
                                                 FaultFn on_fault) {
  auto store = storage::Store::Open(store_options);
  if (!store.ok()) return store.status();
  std::unique_ptr<SyncHost> host(new SyncHost(std::move(store).value(), std::move(on_fault)));
  engine_options.store = host->store_.get();
  auto engine = engine::Engine::Open(engine_options);
  if (!engine.ok()) return engine.status();
  host->engine_ = std::move(engine).value();
  return host;
}

Result<std::unique_ptr<SyncHost>> SyncHost::OpenAt(const std::string& path, engine::Clock* clock,
                                                   FaultFn on_fault) {
  storage::StoreOptions store_options;
  store_options.path = path;
  engine::EngineOptions engine_options;
  engine_options.clock = clock;
  return Open(store_options, engine_options, std::move(on_fault));
}

SyncHost::SyncHost(std::unique_ptr<storage::Store> store, FaultFn on_fault)
    : store_(std::move(store)), on_fault_(std::move(on_fault)) {}

SyncHost::~SyncHost() { (void)Close(); }

Status SyncHost::Close() {
  engine_.reset();
  if (!store_) return Status::Ok();
  Status closed = store_->Close();
  store_.reset();
  return closed;
}

void SyncHost::Answered(uint64_t request) {
  if (request == applying_) applying_answered_ = true;
}

void SyncHost::Execute(std::string_view method, nlohmann::json params,
                       std::shared_ptr<engine::Client> client, engine::ReplyFn reply,
                       engine::EncodedReplyFn reply_encoded) {
  Apply(engine_->FindMethod(method), method, std::move(params), std::move(client), std::move(reply),
        std::move(reply_encoded));
}

void SyncHost::Execute(const engine::Engine::Method& method, std::string_view name,
                       nlohmann::json params, std::shared_ptr<engine::Client> client,
                       engine::ReplyFn reply, engine::EncodedReplyFn reply_encoded) {
  Apply(&method, name, std::move(params), std::move(client), std::move(reply),
        std::move(reply_encoded));
}

void SyncHost::Apply(const engine::Engine::Method* method, std::string_view name,
                     nlohmann::json params, std::shared_ptr<engine::Client> client,
                     engine::ReplyFn reply, engine::EncodedReplyFn reply_encoded) {
  const uint64_t request = next_request_++;
  engine::ReplyFn noted = [this, request, reply = std::move(reply)](Result<nlohmann::json> r) {
    Answered(request);
    reply(std::move(r));
  };
  engine::EncodedReplyFn noted_encoded;
  if (reply_encoded) {
    noted_encoded = [this, request, reply_encoded = std::move(reply_encoded)](std::string text) {
      Answered(request);
      reply_encoded(std::move(text));
    };
  }
  const uint64_t revision = engine_->revision();
  applying_ = request;
  applying_answered_ = false;
  if (method) {
    engine_->Execute(*method, std::move(params), std::move(client), std::move(noted),
                     std::move(noted_encoded));
  } else {
    // Answered INVALID_PARAMS, as the engine answers an unknown method.
    engine_->Execute(name, std::move(params), std::move(client), std::move(noted),
                     std::move(noted_encoded));
  }
  applying_ = 0;
  // Every write counts a revision, so a request that moved it wrote. Whether
  // the write is real shows at the Seal (a request that counted a revision
  // and then failed wrote nothing), hence the check there.
  if (applying_answered_ && engine_->revision() != revision)
    answered_before_durable_.emplace_back(name);
}

std::shared_ptr<ReplySlot> SyncHost::Execute(std::string_view method, nlohmann::json params,
                                             std::shared_ptr<engine::Client> client) {
  auto slot = std::make_shared<ReplySlot>();
  Execute(method, std::move(params), std::move(client), [slot](Result<nlohmann::json> r) {
    ++slot->calls;
    slot->result = std::move(r);
  });
  return slot;
}

bool SyncHost::CommitGroup() {
  if (!engine_->ReadyToSeal()) return false;
  std::unique_ptr<engine::Group> group = engine_->Seal();
  if (group->has_writes()) {
    for (const std::string& method : answered_before_durable_) {
      on_fault_(method + " replied before its write was durable");
    }
  }
  answered_before_durable_.clear();
  // Group::Write touches only the store, so nothing can be answered between
  // it and Land here: what the rule needs checked is the Seal, above.
  Status written = group->Write();
  if (!written.ok()) on_fault_("group write failed: " + written.ToString());
  engine_->Land(*group, written);
  return true;
}

void SyncHost::Pump() {
  for (int i = 0; i < kMaxGroupsPerPump && CommitGroup(); ++i) {
  }
  if (engine_->busy()) on_fault_("group commit did not settle");
}

void SyncHost::RunTimers() {
  engine_->RunTimers();
  Pump();
}

void SyncHost::RunUntilIdle() {
  // Landing a group can make timers due (a grant with a TTL of 0 left) and
  // timers can open groups (an expiry writes): alternate until both rest.
  for (int round = 0; round < kMaxIdleRounds; ++round) {
    if (CommitGroup()) continue;
    std::optional<int64_t> next = engine_->NextTimerInMs();
    if (!next || *next > 0) return;
    engine_->RunTimers();
  }
  on_fault_("groups or due timers still pending after " + std::to_string(kMaxIdleRounds) +
            " rounds");
}

std::shared_ptr<ReplySlot> SyncHost::Start(std::string_view method, nlohmann::json params,
                                           std::shared_ptr<engine::Client> client) {
  std::shared_ptr<ReplySlot> slot = Execute(method, std::move(params), std::move(client));
  Pump();
  return slot;
}

Result<nlohmann::json> SyncHost::Call(std::string_view method, nlohmann::json params,
                                      std::shared_ptr<engine::Client> client) {
  std::shared_ptr<ReplySlot> slot = Start(method, std::move(params), std::move(client));
  if (slot->calls != 1) {
    on_fault_(std::string(method) + " must be answered exactly once, was answered " +
              std::to_string(slot->calls) + " times");
  }
  if (!slot->result) return Status::Internal("no reply to " + std::string(method));
  return std::move(*slot->result);
}

}  // namespace shim::testing
