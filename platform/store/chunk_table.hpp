// The `chunks` table both schemas share: (digest, idx) -> data. Internal to the store.
// An agent bundle with a payload file keeps only markers here (see migration 004).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store::detail {

// Inserts one chunk. The same bytes at a held index are a no-op; other bytes are
// Errc::conflict. The caller has checked that the bundle exists and the index is in range.
[[nodiscard]] Status insert_chunk(Database& db, std::string_view digest, std::uint32_t index,
                                  std::string_view data);

// Records that a chunk kept outside the table is held (its row's data is empty); false when it
// was held already.
[[nodiscard]] Expected<bool> mark_chunk(Database& db, std::string_view digest, std::uint32_t index);

// Reads one chunk into `out` (reusing its capacity); Errc::not_found when it is not held.
[[nodiscard]] Status read_chunk(Database& db, std::string_view digest, std::uint32_t index,
                                std::string& out);

// Deletes every chunk of a bundle.
[[nodiscard]] Status delete_chunks(Database& db, std::string_view digest);

}  // namespace sovdev::store::detail
