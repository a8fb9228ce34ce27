// BundleCache's channel scope and payload repair: which cached bundles count for an agent that
// follows given channels, and forgetting a payload found damaged so it is fetched again.
#include <algorithm>
#include <filesystem>

#include "platform/store/agent_cache.hpp"
#include "platform/store/chunk_table.hpp"
#include "platform/store/detail.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::short_hex;
using detail::with_context;

Expected<std::optional<BundleInfo>> BundleCache::highest_verified(std::string_view channel,
                                                                  std::string_view stack) {
  const std::string what = "find the newest verified bundle of " + std::string(stack) +
                           " in channel " + std::string(channel);
  return with_context(what, [&]() -> Expected<std::optional<BundleInfo>> {
    // The digest only: find() reads the row through the one column list the cache keeps.
    SOVDEV_ASSIGN(CachedStatement select,
                  db_.cached("SELECT digest FROM bundles WHERE channel = ? AND stack = ? AND "
                             "state = 'verified' ORDER BY version DESC LIMIT 1"));
    SOVDEV_TRY(select->bind_all(channel, stack));
    SOVDEV_ASSIGN(const bool row, select->step());
    if (!row) return std::optional<BundleInfo>();
    const std::string digest = select->blob(0);
    select->reset();
    return find(digest);
  }());
}

Expected<std::vector<std::string>> BundleCache::forget_other_channels(
    const std::vector<std::string>& followed) {
  // No channel named is no scope to apply (an agent config always names one).
  if (followed.empty()) return std::vector<std::string>();
  std::vector<std::string> gone_digests;
  auto forgotten = with_context(
      "forget the bundles of channels this agent does not follow",
      transaction(db_, [&]() -> Expected<std::vector<std::string>> {
        std::vector<std::string> names;
        gone_digests.clear();
        {
          SOVDEV_ASSIGN(Statement select,
                        db_.prepare("SELECT digest, stack, version, channel FROM bundles"));
          for (;;) {
            SOVDEV_ASSIGN(const bool row, select.step());
            if (!row) break;
            const std::string channel = select.text(3);
            if (std::find(followed.begin(), followed.end(), channel) != followed.end()) continue;
            gone_digests.push_back(select.blob(0));
            names.push_back(select.text(1) + "@" + std::to_string(select.uint64(2)) + " (channel " +
                            channel + ")");
          }
        }
        for (const auto& digest : gone_digests) {
          // Not a fallback any more: rolling back to another channel's bundle is applying it.
          SOVDEV_ASSIGN(Statement good, db_.prepare("DELETE FROM last_good WHERE digest = ?"));
          SOVDEV_TRY(good.bind(1, Blob{digest}));
          SOVDEV_TRY(good.run());
          SOVDEV_TRY(detail::delete_chunks(db_, digest));
          SOVDEV_ASSIGN(Statement bundle, db_.prepare("DELETE FROM bundles WHERE digest = ?"));
          SOVDEV_TRY(bundle.bind(1, Blob{digest}));
          SOVDEV_TRY(bundle.run());
        }
        return names;
      }));
  if (forgotten && db_.autocommit()) {
    for (const auto& digest : gone_digests) {
      const std::string path = payload_path(digest);
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
    }
  }
  return forgotten;
}

Expected<bool> BundleCache::drop_payload(const BundleMeta& signed_) {
  const std::string path = payload_path(signed_.digest);
  auto dropped = with_context(
      "drop the damaged payload of " + short_hex(signed_.digest),
      transaction(db_, [&]() -> Expected<bool> {
        SOVDEV_TRY(check_digest(signed_.digest));
        SOVDEV_TRY(detail::delete_chunks(db_, signed_.digest));
        // The shape begin() gives a fresh download of the signed payload.
        const std::uint32_t chunk_size =
            path.empty() || signed_.chunk_count == 0 ? 0 : signed_.chunk_size;
        SOVDEV_ASSIGN(
            Statement update,
            db_.prepare("UPDATE bundles SET state = 'partial', payload_origin = 'signed', "
                        "chunk_count = ?, payload_size = ?, chunk_size = ? "
                        "WHERE digest = ?"));
        SOVDEV_TRY(update.bind_all(signed_.chunk_count, signed_.payload_size, chunk_size,
                                   Blob{signed_.digest}));
        SOVDEV_TRY(update.run());
        return db_.changes() > 0;
      }));
  if (dropped && *dropped && db_.autocommit() && !path.empty()) {
    // The rows say no chunk is held: the old bytes are never read again, and a fetch writes
    // the file afresh.
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  return dropped;
}

}  // namespace sovdev::store
