#include "platform/store/epoch_keys.hpp"

#include "platform/store/detail.hpp"

namespace sovdev::store {

namespace {
constexpr size_t kSealedSize = 80;  // crypto_box_seal of a 32-byte key
}

Status EpochKeyCache::put(std::string_view channel, uint64_t epoch, std::string_view sealed,
                          int64_t now) {
  if (epoch == 0 || sealed.size() != kSealedSize) {
    return make_error(Errc::invalid, "a sealed epoch key is " + std::to_string(kSealedSize) +
                                         " bytes for an epoch above 0, got " +
                                         std::to_string(sealed.size()) + " bytes for epoch " +
                                         std::to_string(epoch));
  }
  return detail::with_context(
      "keep the epoch key of " + std::string(channel) + " epoch " + std::to_string(epoch),
      [&]() -> Status {
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT OR REPLACE INTO epoch_keys (channel, epoch, sealed, "
                                  "received_at) VALUES (?, ?, ?, ?)"));
        SOVDEV_TRY(insert.bind_all(channel, epoch, Blob{sealed}, now));
        return insert.run();
      }());
}

Expected<std::optional<std::string>> EpochKeyCache::find(std::string_view channel, uint64_t epoch) {
  SOVDEV_ASSIGN(Statement select,
                db_.prepare("SELECT sealed FROM epoch_keys WHERE channel = ? AND epoch = ?"));
  SOVDEV_TRY(select.bind_all(channel, epoch));
  SOVDEV_ASSIGN(const bool row, select.step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(select.blob(0));
}

Status EpochKeyCache::drop(std::string_view channel, uint64_t epoch) {
  SOVDEV_ASSIGN(Statement del,
                db_.prepare("DELETE FROM epoch_keys WHERE channel = ? AND epoch = ?"));
  SOVDEV_TRY(del.bind_all(channel, epoch));
  return del.run();
}

}  // namespace sovdev::store
