// A keyed workspace for tests that drive sovdev-hub and sovdev-agent as a user would.
#pragma once

#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "tests/support/inputs.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

struct Workspace {
  TempDir dir;
  // trust.root: root1 signs it, pub1 is the targets key (bundles: build), online1 the online
  // key (catalogs and delta manifests: publish and serve).
  std::string trust;

  Workspace();
  std::string key(const std::string& name) const { return dir / ("keys/" + name + ".key"); }
  std::string online_key() const { return key("online1"); }
  // sovdev-hub build with the usual options; extra arguments appended.
  RunResult build(const std::string& source, const std::string& out, uint64_t version,
                  const std::vector<std::string>& extra = {}) const;
  RunResult import(const std::string& file, const std::vector<std::string>& extra = {}) const;
  RunResult verify(const std::string& file) const;
  std::string state() const { return dir / "state"; }
};

// Writes `text` as a manifest file (creating folders).
void write_manifest(const std::string& path, const std::string& text);

// Every record of a bundle file, verified against the trust root file (throws on failure).
std::vector<pb::ResourceRecord> unpack_bundle(const std::string& file,
                                              const std::string& trust_path);

// A signed bundle file made directly with the library, so tests can make it lie.
struct RawBundle {
  std::string header_and_manifest;
  std::string payload;
  std::string bytes() const { return header_and_manifest + payload; }
};
RawBundle make_raw_bundle(const SecretKey& key, uint64_t version, int objects, size_t padding,
                          uint64_t declared_uncompressed = 0);

}  // namespace sovdev::testing
