#include <catch2/catch.hpp>

#include "bundles/bundle_file.hpp"
#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"

using namespace sovdev;

namespace {
pb::BundleManifest manifest(uint64_t version) {
  pb::BundleManifest m;
  m.set_stack("sovdev");
  m.set_channel("edge");
  m.set_version(version);
  m.add_arch("arm64");
  return m;
}
const InstallTarget edge_arm{"edge", "arm64"};
}  // namespace

TEST_CASE("a bundle for another channel is refused", "[rules]") {
  auto r = check_installable(manifest(2), "d", {"prod", "arm64"}, std::nullopt, std::nullopt);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::wrong_target);
  CHECK_THAT(r.error().message, Catch::Contains("this agent follows 'prod'"));
}

TEST_CASE("a bundle for another architecture is refused", "[rules]") {
  auto r = check_installable(manifest(2), "d", {"edge", "amd64"}, std::nullopt, std::nullopt);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::wrong_target);
  CHECK_THAT(r.error().message, Catch::Contains("architecture amd64"));
}

TEST_CASE("a bundle older than the one held is refused as a rollback", "[rules]") {
  auto r = check_installable(manifest(2), "d2", edge_arm, HeldVersion{5, "d5"}, std::nullopt);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::rollback);
  CHECK_THAT(r.error().message, Catch::Contains("rollback refused"));
  CHECK(check_installable(manifest(6), "d6", edge_arm, HeldVersion{5, "d5"}, std::nullopt));
}

TEST_CASE("the same version with other content is refused", "[rules]") {
  auto r = check_installable(manifest(5), sha256("a"), edge_arm, HeldVersion{5, sha256("b")},
                             HeldVersion{5, sha256("b")});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::conflict);
  CHECK_THAT(r.error().message, Catch::Contains("never reuse a version"));
  CHECK(check_installable(manifest(5), sha256("b"), edge_arm, HeldVersion{5, sha256("b")},
                          HeldVersion{5, sha256("b")}));
}

TEST_CASE("an expired catalog is refused for new installs", "[rules]") {
  pb::Catalog c;
  c.set_channel("edge");
  c.set_serial(4);
  c.set_expires_at(1000);
  auto r = check_catalog_fresh(c, 1001);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::expired);
  CHECK_THAT(r.error().message, Catch::Contains("expired"));
  CHECK(check_catalog_fresh(c, 999));
}

TEST_CASE("the bundle header round-trips and refuses bad magic and sizes", "[rules]") {
  auto ok = parse_bundle_header(encode_bundle_header(1234));
  REQUIRE(ok);
  CHECK(*ok == 1234);
  std::string bad = encode_bundle_header(10);
  bad[0] = 'X';
  CHECK_THAT(parse_bundle_header(bad).error().message, Catch::Contains("bad magic"));
  CHECK_THAT(parse_bundle_header(encode_bundle_header(0)).error().message,
             Catch::Contains("declares a manifest of 0"));
  CHECK_THAT(parse_bundle_header("SOVD").error().message, Catch::Contains("truncated"));
}

TEST_CASE("a manifest whose chunk list does not cover the payload is malformed", "[rules]") {
  pb::BundleManifest m = manifest(1);
  m.set_schema(1);
  m.set_compression("zstd");
  m.set_chunk_size(65536);
  m.set_window_log(21);
  m.set_payload_size(65537);
  m.set_payload_sha256(sha256("p"));
  m.add_chunk_sha256(sha256("c"));
  auto r = check_manifest_shape(m);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("1 chunk hashes for 2 chunks"));
  m.add_chunk_sha256(sha256("d"));
  CHECK(check_manifest_shape(m));
  m.set_window_log(27);
  CHECK_THAT(check_manifest_shape(m).error().message, Catch::Contains("window log 27"));
}

TEST_CASE("a payload size near 2^64 cannot pass as zero chunks", "[rules]") {
  pb::BundleManifest m = manifest(1);
  m.set_schema(1);
  m.set_compression("zstd");
  m.set_chunk_size(65536);
  m.set_window_log(21);
  m.set_payload_size(UINT64_MAX - 10);
  m.set_payload_sha256(sha256("p"));
  CHECK_FALSE(check_manifest_shape(m));
}

TEST_CASE("a catalog expiring at the far past is judged expired without overflow", "[rules]") {
  pb::Catalog c;
  c.set_channel("edge");
  c.set_expires_at(INT64_MIN);
  auto r = check_catalog_fresh(c, 1000);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::expired);
}
