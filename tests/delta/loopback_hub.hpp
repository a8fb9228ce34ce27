// The hub's serve code (hub::Server over its own hub.db) on a LoopbackBus endpoint, in a
// translation unit of its own (the hub's store types stay out of the agent-side files).
#pragma once

#include <memory>
#include <string>

#include "bundles/keys.hpp"
#include "common/error.hpp"
#include "tests/delta/loopback_bus.hpp"

namespace sovdev::testing {

class LoopbackHub {
 public:
  // hub.db in `dir`; bundles are checked against `trust_root`, catalogs and delta manifests
  // are signed with `publisher`.
  LoopbackHub(const std::string& dir, const std::string& trust_root, const SecretKey& publisher,
              LoopbackBus::Endpoint& endpoint);
  ~LoopbackHub();
  LoopbackHub(const LoopbackHub&) = delete;
  LoopbackHub& operator=(const LoopbackHub&) = delete;

  // Stores a bundle file as `sovdev-hub publish` does; returns the channel's new signed catalog.
  [[nodiscard]] Expected<std::string> publish(const std::string& bundle_file);
  // Subscribes and publishes the retained catalogs.
  [[nodiscard]] Status start();
  // Handles every message waiting for the hub and takes in finished deltas; true when any was.
  [[nodiscard]] Expected<bool> turn();
  // Plays agents older than the one-answer delta exchange: their requests reach the hub
  // without its fields.
  void strip_one_answer_fields(bool strip);
  // ServeOptions::delta_hold_ms; before start().
  void hold_delta_answers(uint32_t ms);
  // Catalog topic of a channel.
  std::string catalog_topic(const std::string& channel) const;
  const std::string& prefix() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sovdev::testing
