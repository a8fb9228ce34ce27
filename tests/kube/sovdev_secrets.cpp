#include "tests/kube/sovdev_secrets.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <set>

#include "bundles/sealed_record.hpp"
#include "hub/secrets/fleet_keys.hpp"
#include "hub/secrets/values.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

namespace {

template <class T>
T require_ok(Expected<T> result) {
  INFO((result ? "" : result.error().message));
  REQUIRE(result);
  return std::move(*result);
}

// Every (name, key) the stack's files reference, whichever environment deploys them.
std::set<std::pair<std::string, std::string>> references() {
  static const std::regex ref(R"(\$\{secret:([a-z0-9.-]+)/([-._a-zA-Z0-9]+)\})");
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(source_dir() + "/stacks/sovdev/base")) {
    if (!e.is_regular_file()) continue;
    const std::string text = read_text(e.path().string());
    for (std::sregex_iterator m(text.begin(), text.end(), ref), end; m != end; ++m) {
      out.emplace((*m)[1], (*m)[2]);
    }
  }
  return out;
}

}  // namespace

SovdevSecrets sovdev_secrets(const std::string& dir, const std::string& env,
                             const std::string& channel) {
  SovdevSecrets s;
  s.hub_db = dir + "/secrets-hub.db";
  s.store_key = dir + "/secret-store.key";
  s.build_args = {"--db", s.hub_db, "--store-key", s.store_key};
  REQUIRE(hub::secrets::create_store_key(s.store_key));
  const auto key = require_ok(hub::secrets::load_store_key(s.store_key));
  auto db = require_ok(store::open_hub_database(s.hub_db));
  hub::secrets::SecretValues values(db, key);
  const auto refs = references();
  REQUIRE(refs.size() >= 10);
  for (const auto& [name, k] : refs) {
    const seal::SecretBytes random = seal::random_key();
    std::string hex;
    for (size_t i = 0; i < 12; i++) hex += "0123456789abcdef"[random.data()[i] % 16];
    REQUIRE(values.set(env, name, k, seal::SecretBytes::copy_of(hex), 1));
  }
  hub::secrets::FleetKeys fleet(db, key);
  const seal::AgentKey agent = seal::generate_agent_key(env + "-1");
  require_ok(fleet.add({env + "-1", channel, agent.public_key, {}, 1, std::nullopt}, 1));
  auto current = require_ok(fleet.current(channel));
  REQUIRE(current);
  s.epoch = current->epoch;
  s.epoch_key = seal::SecretBytes::copy_of(current->key.view());
  return s;
}

void open_sealed(std::vector<pb::ResourceRecord>& records, const sealed::Place& place,
                 const seal::SecretBytes& epoch_key) {
  for (auto& r : records) {
    if (r.sealed().empty()) continue;
    const auto opened = require_ok(sealed::open_record(r, epoch_key, place));
    r.set_json(require_ok(sealed::splice(r.json(), opened)));
    r.clear_sealed();
  }
}

}  // namespace sovdev::testing
