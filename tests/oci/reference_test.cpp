// Image references with Docker's normalization, digests, and --image-source rules.
#include <catch2/catch.hpp>

#include "bundles/hash.hpp"
#include "common/hex.hpp"
#include "platform/oci/digest.hpp"
#include "platform/oci/reference.hpp"
#include "platform/oci/source.hpp"

using namespace sovdev;
using namespace sovdev::oci;

namespace {

const std::string kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace

TEST_CASE("references are normalized as Docker normalizes them", "[oci][reference]") {
  struct Row {
    const char* text;
    const char* registry;
    const char* repository;
    const char* tag;
    bool digest;
    const char* normalized;
  };
  const std::string d = "@sha256:" + kHex;
  const Row rows[] = {
      {"postgres", "docker.io", "library/postgres", "latest", false,
       "docker.io/library/postgres:latest"},
      {"postgres:16", "docker.io", "library/postgres", "16", false,
       "docker.io/library/postgres:16"},
      {"bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", false,
       "docker.io/bitnami/redis:7.2"},
      {"docker.io/nginx", "docker.io", "library/nginx", "latest", false,
       "docker.io/library/nginx:latest"},
      {"index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", false,
       "docker.io/library/nginx:1"},
      {"ghcr.io/owner/app:v1.2_rc-3", "ghcr.io", "owner/app", "v1.2_rc-3", false,
       "ghcr.io/owner/app:v1.2_rc-3"},
      {"127.0.0.1:5000/test/app:v1", "127.0.0.1:5000", "test/app", "v1", false,
       "127.0.0.1:5000/test/app:v1"},
      {"localhost:5000/app", "localhost:5000", "app", "latest", false, "localhost:5000/app:latest"},
      {"localhost/app", "localhost", "app", "latest", false, "localhost/app:latest"},
      {"Registry/app", "Registry", "app", "latest", false, "Registry/app:latest"},
      {"a.b/c/d/e__f.g-h---i", "a.b", "c/d/e__f.g-h---i", "latest", false,
       "a.b/c/d/e__f.g-h---i:latest"},
  };
  for (const auto& row : rows) {
    INFO(row.text);
    auto ref = parse_reference(row.text);
    REQUIRE(ref);
    CHECK(ref->registry == row.registry);
    CHECK(ref->repository == row.repository);
    CHECK(ref->tag == row.tag);
    CHECK(ref->digest.empty());
    CHECK(ref->to_string() == row.normalized);
    CHECK(ref->name() == std::string(row.registry) + "/" + row.repository);
  }
  SECTION("a digest keeps the tag written beside it and adds none") {
    auto pinned = parse_reference("postgres" + d);
    REQUIRE(pinned);
    CHECK(pinned->tag.empty());
    CHECK(to_hex(pinned->digest) == kHex);
    CHECK(pinned->to_string() == "docker.io/library/postgres" + d);
    CHECK(pinned->tag_or_digest() == "sha256:" + kHex);
    auto both = parse_reference("ghcr.io/o/a:1" + d);
    REQUIRE(both);
    CHECK(both->tag == "1");
    CHECK(both->to_string() == "ghcr.io/o/a:1" + d);
    CHECK(both->pinned(both->digest) == "ghcr.io/o/a" + d);
  }
}

TEST_CASE("malformed references are refused with a message saying what is wrong",
          "[oci][reference]") {
  const std::pair<std::string, std::string> rows[] = {
      {"", "empty"},
      {"Postgres", "lowercase"},
      {"docker.io/Library/postgres", "lowercase"},
      {"postgres:", "tag"},
      {"postgres:-x", "tag"},
      {"postgres:" + std::string(129, 'a'), "tag"},
      {"postgres@sha512:" + std::string(128, 'a'), "only sha256"},
      {"postgres@sha256:abc", "64 hex"},
      {"postgres@sha256:" + std::string(64, 'A'), "lowercase hex"},
      {"ghcr.io/", "no repository"},
      {"ghcr.io//app", "not valid"},
      {"app_/x", "not valid"},
      {"-app", "not valid"},
      {"a..b/x", "not valid"},  // "a..b" has a '.', so it is a registry: not a valid one
      {"host:99999x/app", "not valid"},
      {"ex ample/app", "not valid"},
      {std::string(64, 'a'), "image ID"},
      {"ghcr.io/" + std::string(250, 'a'), "255"},
      {":tag", "no image name"},
  };
  for (const auto& [text, why] : rows) {
    INFO(text);
    auto ref = parse_reference(text);
    REQUIRE_FALSE(ref);
    CHECK(ref.error().code == Errc::invalid);
    CHECK_THAT(ref.error().message, Catch::Contains(why));
  }
}

TEST_CASE("digests parse only as sha256 with 64 lowercase hex digits", "[oci][digest]") {
  auto raw = parse_digest("sha256:" + kHex);
  REQUIRE(raw);
  CHECK(*raw == sha256(""));
  CHECK(format_digest(*raw) == "sha256:" + kHex);
  for (const std::string& bad :
       {std::string("sha256:") + kHex.substr(1), "sha256:" + kHex + "0", "SHA256:" + kHex,
        "sha512:" + kHex, kHex, "sha256:" + kHex.substr(0, 63) + "g", "sha256:E3" + kHex.substr(2),
        std::string("sha256:")}) {
    INFO(bad);
    auto r = parse_digest(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid);
  }
}

TEST_CASE("image source rules parse PREFIX=URL for registries and OCI layouts", "[oci][source]") {
  auto http = parse_source_rule("docker.io/library/=http://127.0.0.1:5000/");
  REQUIRE(http);
  CHECK(http->prefix == "docker.io/library/");
  CHECK(http->url == "http://127.0.0.1:5000");
  auto oci = parse_source_rule("ghcr.io/=oci:/srv/images");
  REQUIRE(oci);
  CHECK(oci->url == "oci:/srv/images");
  for (const char* bad : {"ghcr.io", "=http://x", "ghcr.io/=ftp://x", "ghcr.io/=http://",
                          "ghcr.io/=https://user@host", "ghcr.io/=http://h/path", "x=oci:"}) {
    INFO(bad);
    auto r = parse_source_rule(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::usage);
  }
}

TEST_CASE("the longest matching source prefix wins, and an OCI layout must exist",
          "[oci][source]") {
  auto ref = parse_reference("ghcr.io/o/app:1");
  REQUIRE(ref);
  // The longer rule names a layout that does not exist: its error shows it was the one picked.
  const std::vector<SourceRule> rules = {{"ghcr.io/", "http://127.0.0.1:9"},
                                         {"ghcr.io/o/", "oci:/nonexistent/sovdev-layout"}};
  auto source = open_source(rules, *ref);
  REQUIRE_FALSE(source);
  CHECK_THAT(source.error().message, Catch::Contains("/nonexistent/sovdev-layout"));
  auto other = parse_reference("ghcr.io/p/app:1");
  REQUIRE(other);
  CHECK(open_source(rules, *other));
}
