// Test fixtures for hub/secrets/fleet_keys: an agent with its key, a hub.db with a store key.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "hub/secrets/fleet_keys.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing::fleet {

struct Site {
  seal::AgentKey key;
  hub::secrets::EnrolledAgent enrolled;
};

inline Site site(const std::string& id, const std::string& channel) {
  Site s{seal::generate_agent_key(id), {}};
  s.enrolled.agent_id = id;
  s.enrolled.channel = channel;
  s.enrolled.public_key = s.key.public_key;
  s.enrolled.labels = {{"site", id}};
  return s;
}

// The epoch key an agent gets from its grant, as its bytes; "" when it has none or it does not
// open with the agent's key.
inline std::string opened_by(hub::secrets::FleetKeys& keys, const std::string& channel,
                             uint64_t epoch, const seal::AgentKey& agent) {
  auto grant = keys.grant(channel, epoch, agent.name);
  REQUIRE(grant);
  if (!*grant) return {};
  auto key = seal::open_sealed(**grant, agent);
  return key ? std::string(key->view()) : std::string();
}

// A hub.db with a store key, in a folder of its own.
struct Hub {
  TempDir dir;
  hub::secrets::StoreKey store_key;
  store::Database db;
  hub::secrets::FleetKeys keys;
  Hub() : store_key(make_key(dir)), db(open_db(dir)), keys(db, store_key) {}
  static store::Database open_db(const TempDir& dir) {
    auto opened = store::open_hub_database(dir / "hub.db");
    REQUIRE(opened);
    return std::move(*opened);
  }
  static hub::secrets::StoreKey make_key(const TempDir& dir) {
    REQUIRE(hub::secrets::create_store_key(dir / "store.key"));
    return std::move(*hub::secrets::load_store_key(dir / "store.key"));
  }
};

}  // namespace sovdev::testing::fleet
