// A sealed Secret applied by the real Daemon through the kube target, against
// tests/fake-kube-apiserver: the API server gets a normal Secret in the apply body; agent.db
// (its kube inventory included), the logs and the status never hold the value.
#include <catch2/catch.hpp>

#include <random>

#include "platform/kube/kube_target.hpp"
#include "tests/kube/fake_kube.hpp"
#include "tests/sync/sealed_site.hpp"

using namespace sovdev;
using namespace sovdev::testing;
using nlohmann::json;

TEST_CASE("a sealed Secret reaches the API server in its apply body, and nothing the agent keeps",
          "[sealed][kube]") {
  SealedSite site;
  FakeKube kube;
  kube::KubeTargetOptions options;
  options.health_timeout = std::chrono::seconds(20);
  options.poll_interval = std::chrono::milliseconds(100);
  auto api = kube::ApiClient::create(kube.cert_credentials());
  REQUIRE(api.has_value());
  auto target = kube::make_kube_target(*site.db, std::move(*api), options);
  REQUIRE(target.has_value());
  site.use(std::move(*target), "kube");

  std::random_device rd;
  std::string password = "pw-";
  for (int i = 0; i < 16; ++i) password += "0123456789abcdef"[rd() % 16];
  const auto epoch3 = seal::random_key();
  const std::vector<TestObject> objects = {
      {{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "app"}}}}, {}},
      {secret_object("app", "db"), {{"password", password}}},
      {config_map_object("app", "settings", "one"), {}}};
  site.import(write_sealed_bundle(site.ws, "v1.sdb", 1, objects, {3, &epoch3}));
  site.give_key(3, epoch3);
  site.apply_cached();
  INFO(site.log() << site.daemon->status().last_error());
  REQUIRE(site.last_good() == 1u);
  const json secret = kube.object("Secret", "app", "db");
  REQUIRE(!secret.is_null());
  REQUIRE(secret["data"]["password"] == base64_of(password));
  const std::string kept = site.everything_kept_or_said();
  REQUIRE(kept.find("db") != std::string::npos);  // the inventory names it
  for (const auto& form : forms_of(password)) REQUIRE(kept.find(form) == std::string::npos);
}
