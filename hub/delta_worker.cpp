#include "hub/delta_worker.hpp"

#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "bundles/payload.hpp"

namespace sovdev::hub {
namespace {

Expected<std::string> record_stream(store::Database& db, const store::HubBundle& bundle) {
  store::HubBundles bundles(db);
  pb::Signed envelope;
  pb::BundleManifest manifest;
  if (!envelope.ParseFromString(bundle.envelope) || !manifest.ParseFromString(envelope.body())) {
    return make_error(Errc::store, "stored manifest of " + bundle.stack + "@" +
                                       std::to_string(bundle.version) + " is unreadable");
  }
  std::string payload;
  payload.reserve(bundle.payload_size);
  std::string chunk;
  for (uint32_t i = 0; i < bundle.chunk_count; i++) {
    SOVDEV_TRY(bundles.read_chunk(bundle.digest, i, chunk));
    payload.append(chunk);
  }
  // Checked against the signed uncompressed hash: a delta is never made from damaged content.
  return decode_record_stream(manifest, payload);
}

}  // namespace

MakeDelta delta_from_database(std::string db_path) {
  // Shared by the copies std::function may make; only ever used on the worker's thread.
  auto db = std::make_shared<std::optional<store::Database>>();
  return [db, path = std::move(db_path)](const DeltaJob& job) -> Expected<Delta> {
    if (!*db) {
      SOVDEV_ASSIGN(store::Database opened, store::open_hub_reader(path));
      db->emplace(std::move(opened));
    }
    SOVDEV_ASSIGN(std::string old_stream, record_stream(**db, job.base));
    SOVDEV_ASSIGN(std::string new_stream, record_stream(**db, job.target));
    DeltaOptions options;
    options.max_size = job.target.payload_size;
    return make_delta(old_stream, new_stream, options);
  };
}

DeltaWorker::DeltaWorker(MakeDelta make, size_t max_pending)
    : make_(std::move(make)), max_pending_(max_pending), thread_([this] { run(); }) {}

DeltaWorker::~DeltaWorker() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    jobs_.clear();
  }
  wake_.notify_one();
  thread_.join();
}

bool DeltaWorker::submit(DeltaJob job) {
  {
    std::lock_guard lock(mutex_);
    if (jobs_.size() + (busy_ ? 1 : 0) >= max_pending_) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

std::vector<DeltaResult> DeltaWorker::take_finished() {
  std::lock_guard lock(mutex_);
  return std::exchange(finished_, {});
}

size_t DeltaWorker::pending() const {
  std::lock_guard lock(mutex_);
  return jobs_.size() + (busy_ ? 1 : 0);
}

void DeltaWorker::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    DeltaJob job = std::move(jobs_.front());
    jobs_.pop_front();
    busy_ = true;
    lock.unlock();
    const auto started = std::chrono::steady_clock::now();
    Expected<Delta> delta = make_error(Errc::internal, "delta not made");
    try {
      delta = make_(job);
    } catch (const std::exception& e) {
      // bad_alloc on a huge pair, above all: the thread must survive it, and the agents are
      // told "no delta" and fetch in full.
      delta = make_error(Errc::internal, std::string("making the delta failed: ") + e.what());
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    lock.lock();
    busy_ = false;
    finished_.push_back(
        {std::move(job.key), std::move(job.target), job.base.version, std::move(delta), took});
  }
}

}  // namespace sovdev::hub
