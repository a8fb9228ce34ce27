// Where applied objects go: the apply engine streams one bundle version through a Target,
// one object at a time, so no target ever needs the whole bundle in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// How many changed objects a result names: enough for a log line to say what drifted, without
// a list as long as the bundle.
inline constexpr size_t kNamedChanges = 10;

struct ApplyResult {
  uint32_t applied = 0;    // objects the target changed: created, or different from what it held
  uint32_t unchanged = 0;  // objects already in place as they are
  uint32_t pruned = 0;     // objects of the previous version this one no longer has
  // False when the target cannot tell what changed (exec: the command does not say): then
  // `applied` counts every object handed over.
  bool changes_known = true;
  std::vector<std::string> changed;  // the first kNamedChanges of `applied`, "Kind ns/name"

  // Counts one changed object, keeping its name while there is room.
  void add_changed(std::string name);
};

// "Kind ns/name", or "Kind name" for a cluster-scoped object.
std::string object_name(const pb::ResourceRecord& object);

// A re-apply of the applied version in words, for the log and the apply history:
// "0 of 131 drifted", "2 of 131 drifted: ConfigMap ns/a, Deployment ns/b", with "and N more"
// past kNamedChanges and ", N pruned"; for a target that cannot tell, that it cannot.
std::string drift_summary(const ApplyResult& result, uint32_t objects);

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

  // Called by the target at least every second while it waits inside begin/apply/commit (a
  // command's exit, a health gate, a CRD): an apply may take minutes, and the agent's loop
  // still has to feed the systemd watchdog and report meanwhile. Only waits that make progress
  // beat, so a target stuck in one call still starves the watchdog, as it should.
  void set_heartbeat(std::function<void()> heartbeat) { heartbeat_ = std::move(heartbeat); }

  // For the next apply: whether errors may quote what the target's command printed. Off for a
  // version with sealed Secrets: a command that echoes its input may print a value, cut or
  // escaped past what a search for the whole value finds.
  void set_output_in_errors(bool allowed) { output_in_errors_ = allowed; }

 protected:
  void beat() const {
    if (heartbeat_) heartbeat_();
  }
  bool output_in_errors() const { return output_in_errors_; }

 private:
  std::function<void()> heartbeat_;
  bool output_in_errors_ = true;
};

// The dir and exec targets a config names (the agent builds the kube target itself, with its
// credentials and cache: agent/apply_target.hpp).
Expected<std::unique_ptr<Target>> make_target(const TargetConfig& config);

}  // namespace sovdev::target
