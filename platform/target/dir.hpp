// The `dir` target: one JSON file per object in a folder that something else applies, modelled
// on the k3s/RKE2 auto-deploy folder (/var/lib/rancher/k3s/server/manifests).
//
// k3s rescans that folder every 15 s, re-applies a file whose mtime and checksum changed, and
// ignores dotfiles. So: files are written atomically through a dotfile temp and only when their
// content changed (an unchanged file keeps its mtime); an inventory per stack
// (.sovdev-<stack>.inventory) records every file this target wrote, so a new version prunes
// exactly the files of objects it dropped and never touches anyone else's. Deleting a file does
// not delete its objects in k3s (#1971): a pruned file is first written empty, and removed only
// when a later commit finds it was left empty for DirOptions::prune_grace.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "platform/target/target.hpp"

namespace sovdev::target {

struct DirOptions {
  // How long an emptied file stays before a commit removes it: k3s must have rescanned it (every
  // 15 s, and not while it restarts) to delete its objects. Zero removes it at once, which only
  // suits a folder nothing watches.
  std::chrono::seconds prune_grace{600};
  // Unix seconds; the system clock when empty.
  std::function<int64_t()> now;
};

std::unique_ptr<Target> make_dir_target(const std::string& dir, DirOptions options = {});

// "<stack>.<kind>.<namespace>.<name>-<hash>.json", lower-case, [a-z0-9-] between the dots, the
// namespace left out when empty, at most 63 characters before ".json" (a valid RFC 1123 name
// for the Addon k3s makes of it). The 12 hex digits are SHA-256 of the exact identity (stack,
// API group, kind, namespace, name): replaced characters and shortened names never make two
// objects share a file, and an object keeps its file from version to version.
std::string object_file_name(std::string_view stack, const pb::ResourceRecord& object);

}  // namespace sovdev::target
