// Where applied objects go: the apply engine streams one bundle version through a Target,
// one object at a time, so no target ever needs the whole bundle in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "platform/target/target_config.hpp"
#include "sovdev.pb.h"

namespace sovdev::target {

struct ApplyBegin {
  std::string stack;
  uint64_t version = 0;
  std::string digest_hex;  // short, for names and messages
  std::string digest;      // the manifest digest, 32 bytes
};

struct ApplyResult {
  uint32_t applied = 0;    // objects written because they changed
  uint32_t unchanged = 0;  // objects already in place as they are
  uint32_t pruned = 0;     // objects of the previous version this one no longer has
};

// One apply is begin(), apply() for every object in bundle order, then commit(); after any
// failure the caller calls abort(). One apply at a time per target.
class Target {
 public:
  virtual ~Target() = default;
  virtual Status begin(const ApplyBegin& version) = 0;
  virtual Status apply(const pb::ResourceRecord& object) = 0;
  // Prunes what this version no longer has and makes the result durable.
  virtual Expected<ApplyResult> commit() = 0;
  // After a failure mid-way; leaves the previous state usable. Safe to call at any time.
  virtual void abort() = 0;
};

// The dir and exec targets a config names (the agent builds the kube target itself, with its
// credentials and cache: agent/apply_target.hpp).
Expected<std::unique_ptr<Target>> make_target(const TargetConfig& config);

}  // namespace sovdev::target
