// Secret references in a stack's manifests (hub/secrets/refs), their passage through render,
// and the manifest's secrets fields (bundles/manifest_rules).
#include <catch2/catch.hpp>

#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"
#include "hub/render.hpp"
#include "hub/secrets/refs.hpp"
#include "tests/bundles/fixtures.hpp"

using namespace sovdev;
using namespace sovdev::hub;

namespace {

// The signature tests' well-formed manifest, with room for 4 sealed objects.
pb::BundleManifest shaped() {
  pb::BundleManifest m = testing::small_manifest();
  m.set_resource_count(4);
  return m;
}

std::string shape_error(const pb::BundleManifest& m) {
  auto r = check_manifest_shape(m);
  return r ? std::string() : r.error().message;
}

}  // namespace

TEST_CASE(
    "a manifest that seals objects names channel, epoch and a 32-byte key id; one that "
    "seals none names nothing",
    "[secrets][rules]") {
  pb::BundleManifest m = shaped();
  CHECK(shape_error(m).empty());

  m.set_sealed_objects(2);
  CHECK_THAT(shape_error(m), Catch::Contains("bad secrets channel name ''"));
  m.set_secrets_channel("edge");
  CHECK_THAT(shape_error(m), Catch::Contains("epoch 0"));
  m.set_secrets_epoch(1);
  CHECK_THAT(shape_error(m), Catch::Contains("key id is not 32 bytes"));
  m.set_secrets_key_id(std::string(31, 'k'));
  CHECK_THAT(shape_error(m), Catch::Contains("key id is not 32 bytes"));
  m.set_secrets_key_id(std::string(32, 'k'));
  CHECK(shape_error(m).empty());
  m.set_sealed_objects(5);
  CHECK_THAT(shape_error(m), Catch::Contains("seals 5 objects of 4"));

  for (int field = 0; field < 3; field++) {
    pb::BundleManifest none = shaped();
    if (field == 0) none.set_secrets_channel("edge");
    if (field == 1) none.set_secrets_epoch(1);
    if (field == 2) none.set_secrets_key_id(std::string(32, 'k'));
    CHECK_THAT(shape_error(none), Catch::Contains("names a secrets epoch but seals no object"));
  }
}

TEST_CASE("a value splits into literal text and references; a malformed reference is named",
          "[secrets][refs]") {
  auto pieces = secrets::split_value("postgresql://app:${secret:pg/password}@db:5432/app");
  REQUIRE(pieces);
  REQUIRE(pieces->size() == 3);
  CHECK((*pieces)[0].text == "postgresql://app:");
  CHECK((*pieces)[1].is_ref);
  CHECK((*pieces)[1].ref.name == "pg");
  CHECK((*pieces)[1].ref.key == "password");
  CHECK((*pieces)[2].text == "@db:5432/app");

  auto alone = secrets::split_value("${secret:a.b/KEY_1}");
  REQUIRE(alone);
  REQUIRE(alone->size() == 1);
  CHECK((*alone)[0].ref.key == "KEY_1");

  for (const char* bad : {"${secret:pg}", "${secret:pg/}", "${secret:/k}", "${secret:PG/k}",
                          "x ${secret:pg/k", "${secret:pg/k/x}"}) {
    INFO(bad);
    auto r = secrets::split_value(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("${secret:"));
  }
  CHECK(secrets::mask_refs("a: x${secret:pg/k}y ${secret:q/r}\n") == "a: x<sealed>y <sealed>\n");
}

TEST_CASE("a Secret's values are found with their lines; a reference elsewhere is refused",
          "[secrets][refs]") {
  auto docs =
      secrets::scan_file("base/s.yaml",
                         "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: "
                         "a}\nstringData:\n  a: ${secret:s/a}\n  b: plain\ndata:\n  c: \"\"\n");
  REQUIRE(docs);
  REQUIRE(docs->size() == 1);
  const auto& doc = docs->front();
  CHECK(doc.source == "base/s.yaml:1");
  CHECK(doc.name == "s");
  REQUIRE(doc.sites.size() == 3);
  CHECK(doc.sites[0].line == 5);
  CHECK(doc.sites[0].refs.size() == 1);
  CHECK(doc.sites[1].literal);
  CHECK_FALSE(doc.sites[2].literal);  // empty: nothing secret in it

  auto in_list =
      secrets::scan_file("l.yaml",
                         "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"
                         "  metadata: {name: c}\n  data:\n    k: ${secret:s/a}\n");
  REQUIRE_FALSE(in_list);
  CHECK_THAT(in_list.error().message,
             Catch::Contains("l.yaml:8: secret references are allowed only in a Secret's data "
                             "or stringData"));
  auto key = secrets::scan_file("k.yaml",
                                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n"
                                "  ${secret:s/a}: x\n");
  REQUIRE_FALSE(key);
  CHECK_THAT(key.error().message, Catch::Contains("k.yaml:5: secret references"));
}

TEST_CASE("render passes secret references through; $${ still writes a literal ${",
          "[secrets][render]") {
  StackEnv env;
  env.name = "edge";
  env.file = "env/edge.toml";
  env.values = {{"HOST", "db"}};
  auto out = render_text("base/s.yaml",
                         "url: postgresql://app:${secret:pg/password}@${HOST}/app\n"
                         "script: $${HOME} and ${secret:pg/k}\n",
                         env);
  REQUIRE(out);
  CHECK(*out ==
        "url: postgresql://app:${secret:pg/password}@db/app\nscript: ${HOME} and ${secret:pg/k}\n");
  auto other = render_text("base/s.yaml", "a: ${lower}\n", env);
  REQUIRE_FALSE(other);
  CHECK_THAT(other.error().message, Catch::Contains("base/s.yaml:1"));
}
