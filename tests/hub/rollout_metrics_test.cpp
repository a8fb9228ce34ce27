// /metrics for rollouts: each wave's agents by state as the gates count them, the waves opened
// and the rollout's state, for each stack's newest rollout only (an older one of the same stack
// is history and makes no series).
#include <catch2/catch.hpp>
#include <cmath>

#include "hub/metrics.hpp"
#include "platform/store/hub_store.hpp"
#include "platform/store/rollout_store.hpp"
#include "sovdev.pb.h"
#include "tests/hub/exposition_check.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::hub;
using sovdev::testing::parse_exposition;

namespace {

constexpr std::int64_t kMetricsNow = 3'000'000;

store::RolloutRow rollout_row(std::uint64_t version, store::RolloutState state) {
  store::RolloutRow r;
  r.channel = "prod";
  r.stack = "kp";
  r.version = version;
  r.digest = std::string(32, static_cast<char>('0' + version));
  r.base_version = version - 1;
  r.base_digest = std::string(32, 'b');
  r.waves = {{"canary", "site=lab", 100}, {"all", "", 100}};
  r.success_permille = 900;
  r.within_seconds = 1800;
  r.abort_count = 5;
  r.state = state;
  r.wave_opened_at = kMetricsNow - 60;
  r.created_at = kMetricsNow - 60;
  r.updated_at = kMetricsNow - 60;
  return r;
}

void report(store::Database& db, const std::string& agent, const std::string& site,
            const std::string& applied, const std::string& failed) {
  pb::AgentStatus st;
  st.set_agent_id(agent);
  st.set_channel("prod");
  st.set_state("healthy");
  st.set_applied_digest(applied);
  st.set_failed_digest(failed);
  (*st.mutable_labels())["site"] = site;
  st.set_updated_at(kMetricsNow - 10);
  REQUIRE(store::FleetStatus(db).upsert({agent, "prod", st.SerializeAsString(), kMetricsNow - 10},
                                        kMetricsNow - 10));
}

}  // namespace

TEST_CASE("metrics count each wave's agents by state for each stack's newest rollout",
          "[metrics][rollout]") {
  sovdev::testing::TempDir dir;
  auto db = store::open_hub_database(dir / "hub.db");
  REQUIRE(db);
  store::Rollouts rollouts(*db);
  REQUIRE(rollouts.insert(rollout_row(4, store::RolloutState::aborted)));
  auto id = rollouts.insert(rollout_row(5, store::RolloutState::running));
  REQUIRE(id);
  const std::string v5(32, '5');
  report(*db, "lab-1", "lab", v5, "");
  report(*db, "lab-2", "lab", std::string(32, 'b'), v5);
  report(*db, "lab-3", "lab", std::string(32, 'b'), "");
  report(*db, "plant-1", "plant", std::string(32, 'b'), "");

  metrics::Writer w;
  REQUIRE(metrics::render_rollouts(w, *db, kMetricsNow));
  const auto e = parse_exposition(w.text());
  INFO(w.text());
  CHECK(e.problems.empty());
  const std::string head = R"(sovdev_hub_rollout_agents{rollout=")" + std::to_string(*id) +
                           R"(",channel="prod",stack="kp",wave=")";
  CHECK(e.value(head + R"(canary",state="healthy"})") == 1);
  CHECK(e.value(head + R"(canary",state="failed"})") == 1);
  CHECK(e.value(head + R"(canary",state="pending"})") == 1);
  CHECK(e.value(head + R"(all",state="pending"})") == 1);
  CHECK(e.value(head + R"(all",state="offline"})") == 0);
  CHECK(e.value(R"(sovdev_hub_rollout_admitted_waves{rollout=")" + std::to_string(*id) +
                R"(",channel="prod",stack="kp"})") == 1);
  CHECK(e.value(R"(sovdev_hub_rollout_state{rollout=")" + std::to_string(*id) +
                R"(",channel="prod",stack="kp",state="running"})") == 1);
  CHECK(e.value(R"(sovdev_hub_rollout_state{rollout=")" + std::to_string(*id) +
                R"(",channel="prod",stack="kp",state="aborted"})") == 0);
  // The older, aborted rollout of the same stack makes no series.
  CHECK(std::isnan(e.value(R"(sovdev_hub_rollout_state{rollout="1",channel="prod",stack="kp",)"
                           R"(state="aborted"})")));
}
