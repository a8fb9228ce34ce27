// The loopback registry's routing: what it serves, and the distribution spec's error for
// everything else, decided from the method and the path alone.
#include <catch2/catch.hpp>

#include "agent/images/registry_routes.hpp"
#include "common/hex.hpp"

using namespace sovdev::agent::images;

namespace {

const std::string kHex(64, 'a');

}  // namespace

TEST_CASE("the registry routes pulls by digest for any valid repository name", "[images]") {
  CHECK(route_request("GET", "/v2/").kind == RouteKind::base);
  CHECK(route_request("HEAD", "/v2").kind == RouteKind::base);
  for (const char* name : {"postgres", "library/postgres", "a/b/c/d", "my-org/x.y__z", "a--b/c_d",
                           "manifests", "blobs/manifests"}) {
    INFO(name);
    const Route m = route_request("GET", std::string("/v2/") + name + "/manifests/sha256:" + kHex);
    CHECK(m.kind == RouteKind::manifest);
    CHECK(m.digest == sovdev::from_hex(kHex));
    CHECK(m.digest_text == "sha256:" + kHex);
    CHECK(route_request("HEAD", std::string("/v2/") + name + "/blobs/sha256:" + kHex).kind ==
          RouteKind::blob);
  }
}

TEST_CASE("the registry refuses tags, bad digests, bad names, writes and other paths", "[images]") {
  struct Case {
    const char* method;
    std::string path;
    unsigned status;
    const char* code;
  };
  const std::vector<Case> cases = {
      {"GET", "/v2/library/postgres/manifests/16", 404, "MANIFEST_UNKNOWN"},
      {"GET", "/v2/library/postgres/manifests/latest", 404, "MANIFEST_UNKNOWN"},
      {"GET", "/v2/x/blobs/sha512:" + kHex + kHex, 404, "BLOB_UNKNOWN"},
      {"GET", "/v2/x/manifests/sha512:" + kHex + kHex, 404, "MANIFEST_UNKNOWN"},
      {"GET", "/v2/x/blobs/sha256:" + kHex.substr(1), 400, "DIGEST_INVALID"},
      {"GET", "/v2/x/blobs/sha256:" + std::string(64, 'A'), 400, "DIGEST_INVALID"},
      {"GET", "/v2/x/blobs/sha256:" + std::string(63, 'a') + "g", 400, "DIGEST_INVALID"},
      {"GET", "/v2/x/blobs/latest", 400, "DIGEST_INVALID"},
      {"GET", "/v2/x/blobs/", 400, "DIGEST_INVALID"},
      {"GET", "/v2/../blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2/a/../../blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2/Upper/blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2/a//b/blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2//blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2/-a/blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2/a___b/blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2/" + std::string(256, 'a') + "/blobs/sha256:" + kHex, 400, "NAME_INVALID"},
      {"GET", "/v2/x/tags/list", 404, "UNSUPPORTED"},
      {"GET", "/v2/_catalog", 404, "UNSUPPORTED"},
      {"GET", "/v2/../../etc/passwd", 404, "UNSUPPORTED"},
      {"GET", "/etc/passwd", 404, "UNSUPPORTED"},
      {"GET", "/", 404, "UNSUPPORTED"},
      {"POST", "/v2/x/blobs/uploads/", 405, "UNSUPPORTED"},
      {"PUT", "/v2/x/manifests/sha256:" + kHex, 405, "UNSUPPORTED"},
      {"DELETE", "/v2/x/blobs/sha256:" + kHex, 405, "UNSUPPORTED"},
      {"PATCH", "/v2/", 405, "UNSUPPORTED"},
  };
  for (const Case& c : cases) {
    INFO(c.method << " " << c.path);
    const Route r = route_request(c.method, c.path);
    CHECK(r.kind == RouteKind::error);
    CHECK(r.status == c.status);
    CHECK(r.code == c.code);
    CHECK_FALSE(r.message.empty());
  }
}

TEST_CASE("the registry's error body is the distribution spec's JSON, escaped", "[images]") {
  CHECK(registry_error_json("BLOB_UNKNOWN", "not \"held\"") ==
        "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"detail\":null,\"message\":\"not "
        "\\\"held\\\"\"}]}\n");
}
