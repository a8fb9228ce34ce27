#include <string>

#include <catch2/catch.hpp>

#include "bundles/yaml/names.hpp"

using namespace sovdev::yaml;

TEST_CASE("RFC 1123 labels: lowercase alphanumerics and '-', at most 63", "[yaml][names]") {
  CHECK(is_dns1123_label("monitoring"));
  CHECK(is_dns1123_label("a"));
  CHECK(is_dns1123_label("0abc-9"));
  CHECK(is_dns1123_label(std::string(63, 'z')));
  CHECK_FALSE(is_dns1123_label(std::string(64, 'z')));
  CHECK_FALSE(is_dns1123_label(""));
  CHECK_FALSE(is_dns1123_label("-a"));
  CHECK_FALSE(is_dns1123_label("a-"));
  CHECK_FALSE(is_dns1123_label("A"));
  CHECK_FALSE(is_dns1123_label("a.b"));
  CHECK_FALSE(is_dns1123_label("a_b"));
}

TEST_CASE("RFC 1035 labels start with a letter", "[yaml][names]") {
  CHECK(is_dns1035_label("api"));
  CHECK(is_dns1035_label("a-1"));
  CHECK_FALSE(is_dns1035_label("1api"));
  CHECK_FALSE(is_dns1035_label(""));
  CHECK_FALSE(is_dns1035_label(std::string(64, 'a')));
}

TEST_CASE("RFC 1123 subdomains: dot-separated labels, at most 253", "[yaml][names]") {
  CHECK(is_dns1123_subdomain("prometheuses.monitoring.coreos.com"));
  CHECK(is_dns1123_subdomain("a"));
  CHECK(is_dns1123_subdomain(std::string(253, 'a')));
  CHECK_FALSE(is_dns1123_subdomain(std::string(254, 'a')));
  CHECK_FALSE(is_dns1123_subdomain(""));
  CHECK_FALSE(is_dns1123_subdomain(".a"));
  CHECK_FALSE(is_dns1123_subdomain("a."));
  CHECK_FALSE(is_dns1123_subdomain("a..b"));
  CHECK_FALSE(is_dns1123_subdomain("a.-b"));
  CHECK_FALSE(is_dns1123_subdomain("system:x"));
}

TEST_CASE("path segment names refuse only '.', '..', '/' and '%'", "[yaml][names]") {
  CHECK(is_path_segment_name("system:aggregated-metrics-reader"));
  CHECK(is_path_segment_name("Any_Thing"));
  CHECK(is_path_segment_name("..."));
  CHECK_FALSE(is_path_segment_name(""));
  CHECK_FALSE(is_path_segment_name("."));
  CHECK_FALSE(is_path_segment_name(".."));
  CHECK_FALSE(is_path_segment_name("a/b"));
  CHECK_FALSE(is_path_segment_name("a%2F"));
}
