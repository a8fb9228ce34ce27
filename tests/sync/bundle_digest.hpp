// A bundle file's identity as the agent computes it: SHA-256 of its manifest body, after the
// manifest's signatures verify against the trust root. Header only (needs the agent library).
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "agent/trust_pin.hpp"
#include "platform/fs/bundle_reader.hpp"

namespace sovdev::testing {

inline std::string bundle_digest(const std::string& file, const std::string& trust_path) {
  auto trust = agent::trust_from_file(trust_path);
  REQUIRE(trust);
  auto reader = fs::BundleFileReader::open(file);
  REQUIRE(reader);
  std::string digest;
  REQUIRE(trust->verify_manifest(reader->manifest_envelope(), &digest));
  return digest;
}

}  // namespace sovdev::testing
