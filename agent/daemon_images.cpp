// The daemon's hook for container images (docs/design-images.md): a verified version whose
// manifest lists image blobs is applied only once agent.db holds every blob this arch needs
// verified; until then agent/images/image_sync.hpp fetches them, one version at a time.
#include <spdlog/spdlog.h>

#include "agent/daemon.hpp"

namespace sovdev::agent {

Expected<bool> Daemon::images_ready(const std::string& digest, const pb::BundleManifest& manifest,
                                    int64_t now_ms) {
  if (manifest.image_blobs_size() == 0) {
    status_.set_image_blobs_needed(0);
    status_.set_image_blobs_held(0);
    status_.set_image_bytes_needed(0);
    status_.set_image_bytes_held(0);
    return true;
  }
  if (images_) {
    // One version's images at a time; this one is asked for again once they are applied.
    if (images_->digest() != digest) {
      spdlog::info("{}@{} waits: the images of {}@{} are being fetched", manifest.stack(),
                   manifest.version(), images_->manifest().stack(), images_->manifest().version());
    }
    return false;
  }
  images_ = std::make_unique<images::ImageSync>(db_, client_, settings_.fetch, settings_.images,
                                                counters_, manifest, digest);
  SOVDEV_TRY(guard_images(images_->start(now_ms)));
  if (images_->phase() == images::ImageSync::Phase::done) {
    // Held already (offline, or fetched for an earlier version): no fetch, apply now.
    images_->fill_status(status_);
    images_.reset();
    return true;
  }
  if (images_->phase() == images::ImageSync::Phase::fetching) {
    status_.set_fetching_version(manifest.version());
    SOVDEV_TRY(set_state("fetching", now_ms));
    return false;
  }
  SOVDEV_TRY(after_images(now_ms));
  return false;
}

Status Daemon::guard_images(Status step) {
  if (step || !images_) return step;
  if (step.error().code != Errc::io && step.error().code != Errc::store) return step;
  return images_->storage_failed(step.error());
}

Status Daemon::after_images(int64_t now_ms) {
  if (!images_) return {};
  images_->fill_status(status_);
  if (images_->phase() == images::ImageSync::Phase::fetching) return {};
  const std::string digest = images_->digest();
  const pb::BundleManifest manifest = images_->manifest();
  if (images_->phase() == images::ImageSync::Phase::failed) {
    const Error error{images_->error_code(), "images of " + manifest.stack() + "@" +
                                                 std::to_string(manifest.version()) + ": " +
                                                 images_->error()};
    images_.reset();
    if (error.code == Errc::io || error.code == Errc::unavailable) {
      // A full disk or quota is not the version's fault: tried again later, the last good
      // version keeps running. The fetch finds the bundle verified and comes back here.
      failure_ = error;
      status_.set_last_error(error.message);
      const int64_t delay = retry_fetch(
          FetchGoal{manifest.stack(), manifest.version(), digest, std::nullopt}, now_ms);
      spdlog::warn("{}; the last good version stays applied, trying again in {} s", error.message,
                   delay / 1000);
    } else {
      // Refused images (a blob that is not what the signature says, an index naming blobs the
      // bundle does not list): the version is never applied.
      record_failed(manifest, digest, error, now_ms);
    }
    status_.set_fetching_version(0);
    SOVDEV_TRY(set_state("degraded", now_ms));
    return next_fetch(now_ms);
  }
  images_.reset();
  SOVDEV_TRY(apply(digest, now_ms));
  return next_fetch(now_ms);
}

}  // namespace sovdev::agent
