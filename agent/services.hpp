// Health per service of the stack, as the fleet view shows it: each object names its service
// with the label `sovdev.io/service` (objects that stand in for a managed service outside the
// cluster also carry `sovdev.io/external: "true"`). Counted as the objects stream past, so the
// agent never holds an object list.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sovdev.pb.h"

namespace sovdev::agent {

inline constexpr std::string_view kServiceLabel = "sovdev.io/service";
inline constexpr std::string_view kExternalLabel = "sovdev.io/external";

struct ObjectService {
  std::string service;  // empty: the object belongs to no service
  bool external = false;
};

// Reads the two labels from a record's JSON (only metadata.labels is looked at).
ObjectService service_of(std::string_view json);

class ServiceTally {
 public:
  static constexpr size_t kMaxServices = 60;  // the status message carries at most 64

  // Counts an object; it stays the current one until the next add().
  void add(const pb::ResourceRecord& record);
  // The current object's service failed (its apply was refused).
  void fail_current(const std::string& why);
  void fail(const std::string& service, const std::string& why);
  bool empty() const { return services_.empty(); }

  // Sorted by service: healthy, external (every object of it is external) or degraded.
  std::vector<pb::ServiceHealth> health() const;
  // This tally's failures laid over `base` (the state of the version that keeps running).
  std::vector<pb::ServiceHealth> failures_over(std::vector<pb::ServiceHealth> base) const;

 private:
  struct Count {
    uint32_t objects = 0;
    uint32_t external = 0;
    std::string failure;
  };
  std::map<std::string, Count> services_;
  std::string current_;
};

}  // namespace sovdev::agent
