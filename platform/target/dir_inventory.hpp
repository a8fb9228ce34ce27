// The dir target's inventory: which files in the folder a stack's applies wrote, so pruning
// touches those and nothing else. One text file per stack, `.sovdev-<stack>.inventory`
// (a dotfile, so k3s ignores it), one entry a line:
//   live NAME             in the last committed version
//   pending NAME          appended (and synced) before an apply creates a file the inventory
//                         does not list yet, so a crash or an abort never leaves a file of ours
//                         that no inventory names
//   emptied NAME UNIXTIME pruned: written empty at that time, removed after the grace period
// Replaced atomically at commit; only ever appended to in between.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::target {

enum class FileState { live, pending, emptied };

struct InventoryEntry {
  FileState state = FileState::live;
  int64_t emptied_at = 0;  // unix seconds, for FileState::emptied
};

using Inventory = std::map<std::string, InventoryEntry>;  // file name → entry

struct InventoryFile {
  Inventory entries;
  bool torn = false;  // the last line was cut short (a crash during an append)
};

std::string inventory_path(const std::string& dir, std::string_view stack);

// A name this target could have made: what a damaged or hand-edited inventory may name is
// checked before anything is written or removed.
bool is_object_file_name(std::string_view name);

// A missing file is an empty inventory; a torn last line is dropped and reported.
Expected<InventoryFile> read_inventory(const std::string& path);

// Replaces the inventory atomically and durably. `comment` goes on a line of its own.
Status write_inventory(const std::string& path, std::string_view comment,
                       const Inventory& inventory);

// Appends "pending NAME" and syncs it (and the folder, if the file was new).
Status append_pending(const std::string& path, const std::string& name);

}  // namespace sovdev::target
