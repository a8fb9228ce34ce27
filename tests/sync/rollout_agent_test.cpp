// Staged rollouts on the agent (issue #21, docs/design-rollouts.md "Agent"): the real Daemon
// follows signed catalogs whose entries carry a rollout, with the dir target writing what it
// applies. Who is admitted applies the rollout's version; nobody else moves; an aborted rollout
// with revert sends an agent back to the version it held before, and nowhere else; revoked
// versions never run; a closed maintenance window holds a version until it opens.
#include <catch2/catch.hpp>

#include "bundles/keys.hpp"
#include "bundles/sign_objects.hpp"
#include "platform/store/failed_bundles.hpp"
#include "platform/store/rollout_marks.hpp"
#include "tests/sync/rollout_site.hpp"

using namespace sovdev;
using namespace sovdev::testing;
using State = pb::CatalogRollout;

namespace {

SiteOptions site_labels(const std::string& site, bool prefetch = false) {
  SiteOptions o;
  o.labels = {{"site", site}};
  o.prefetch = prefetch;
  return o;
}

pb::CatalogEntry with_rollout(pb::CatalogEntry e, pb::CatalogRollout r) {
  *e.mutable_rollout() = std::move(r);
  return e;
}

// An agent at `site` running kp@1, with kp@2 in its cache (imported after kp@1 was applied:
// the agent never installs below the highest version it holds).
struct OnVersionOne : RolloutSite {
  explicit OnVersionOne(SiteOptions o) : RolloutSite(std::move(o)) {
    add_version(1);
    receive(catalog({entry(1)}));
    INFO(log());
    REQUIRE(last_good() == 1u);
    add_version(2);
  }
};

pb::CatalogRollout aborted_with_revert(pb::CatalogRollout r) {
  r.set_state(State::ABORTED);
  r.set_revert(true);
  return r;
}

}  // namespace

TEST_CASE("an admitted agent applies the rollout's version and marks its last good before it",
          "[rollout]") {
  OnVersionOne site(site_labels("lab"));
  site.receive(
      site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"canary:site=lab"}))}));
  INFO(site.log());
  CHECK(site.last_good() == 2u);
  CHECK(site.on_target() == 2);
  auto mark = store::RolloutMarks(*site.db).find("kp", 7);
  REQUIRE(mark.has_value());
  REQUIRE(mark->has_value());
  REQUIRE((*mark)->prior);
  CHECK((*mark)->prior->version == 1);
  CHECK((*mark)->state == "open");
  CHECK(site.daemon->status().rollout_id() == 7);
  CHECK(site.daemon->status().labels().at("site") == "lab");
}

TEST_CASE("an agent no wave admits stays on the current version", "[rollout]") {
  OnVersionOne site(site_labels("plant-7"));
  site.receive(site.catalog(
      {with_rollout(site.entry(1), site.rollout(7, 2, {"canary:site=lab", "eu:region=eu"}))}));
  CHECK(site.last_good() == 1u);
  CHECK(site.on_target() == 1);
  CHECK(site.daemon->status().rollout_id() == 0);
  CHECK(site.daemon->up_to_date());
}

TEST_CASE("a paused or aborted rollout starts nobody on its version", "[rollout]") {
  const auto state = GENERATE(State::PAUSED, State::ABORTED);
  OnVersionOne site(site_labels("lab"));
  site.receive(
      site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"all:site=lab"}, state))}));
  CHECK(site.last_good() == 1u);
  CHECK(site.on_target() == 1);
}

TEST_CASE("an agent offline during its wave applies on reconnect only if the rollout still runs",
          "[rollout]") {
  const bool still_running = GENERATE(true, false);
  OnVersionOne site(site_labels("lab"));
  // While it was away its wave opened (that catalog never reached it), then the rollout went on
  // or was paused. The broker's retained catalog is the newest: that is what it gets.
  auto missed =
      site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"canary:site=lab"}))});
  (void)missed;
  site.restart(site_labels("lab"));
  site.receive(site.catalog(
      {with_rollout(site.entry(1), site.rollout(7, 2, {"canary:site=lab"},
                                                still_running ? State::RUNNING : State::PAUSED))}));
  CHECK(site.last_good() == (still_running ? 2u : 1u));
}

TEST_CASE("an aborted rollout with revert sends the agent back to its own last good, once",
          "[rollout][revert]") {
  RolloutSite site(site_labels("lab"));
  site.add_version(1);
  site.add_version(2);
  site.receive(site.catalog({site.entry(2)}));
  REQUIRE(site.last_good() == 2u);
  site.add_version(3);
  site.receive(
      site.catalog({with_rollout(site.entry(2), site.rollout(7, 3, {"canary:site=lab"}))}));
  REQUIRE(site.last_good() == 3u);
  // The hub's entry names 1, but this agent held 2 before the rollout: 2 it is.
  const auto abort = site.catalog(
      {with_rollout(site.entry(1), aborted_with_revert(site.rollout(7, 3, {"canary:site=lab"})))});
  site.receive(abort);
  INFO(site.log());
  CHECK(site.last_good() == 2u);
  CHECK(site.on_target() == 2);
  CHECK((*store::RolloutMarks(*site.db).find("kp", 7))->state == "reverted");
  CHECK(site.daemon->status().rollout_id() == 0);
  // The same rollout again, and 3 applied again by hand: no second revert from the closed mark.
  auto again = site.catalog(
      {with_rollout(site.entry(3), aborted_with_revert(site.rollout(7, 3, {"canary:site=lab"})))});
  site.receive(again);
  REQUIRE(site.last_good() == 3u);
  site.receive(site.catalog(
      {with_rollout(site.entry(1), aborted_with_revert(site.rollout(7, 3, {"canary:site=lab"})))}));
  CHECK(site.last_good() == 3u);
}

TEST_CASE("a lower version is refused unless it is the revert this agent's own mark allows",
          "[rollout][revert]") {
  OnVersionOne site(site_labels("lab"));
  site.receive(site.catalog({site.entry(2)}));
  REQUIRE(site.last_good() == 2u);
  SECTION("the catalog lists an older version") {
    site.receive(site.catalog({site.entry(1)}));
  }
  SECTION("an aborted rollout with revert of the version it runs, but applied without a mark") {
    site.receive(site.catalog(
        {with_rollout(site.entry(1), aborted_with_revert(site.rollout(9, 2, {"all:site=lab"})))}));
  }
  CHECK(site.last_good() == 2u);
  CHECK(site.on_target() == 2);
}

TEST_CASE("a forged catalog admitting every agent is refused", "[rollout][security]") {
  OnVersionOne site(site_labels("lab"));
  const uint64_t rejected = site.daemon->rejected();
  site.receive(site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"everyone:*"}))}),
               {generate_key("intruder")});
  CHECK(site.daemon->rejected() == rejected + 1);
  CHECK(site.last_good() == 1u);
  CHECK(site.on_target() == 1);
}

TEST_CASE("a revoked version is neither applied as the current version nor as a rollout's",
          "[rollout][revocation]") {
  OnVersionOne site(site_labels("lab"));
  auto c = site.catalog({with_rollout(site.entry(2), site.rollout(7, 2, {"all:site=lab"}))});
  c.mutable_entries(0)->mutable_rollout()->set_version(2);
  c.set_revocations(site.revocations(1, {2}));
  site.receive(c);
  CHECK(site.last_good() == 1u);
  CHECK(site.on_target() == 1);
  // A later catalog without the list does not un-revoke it: the agent kept it.
  site.receive(site.catalog({site.entry(2)}));
  CHECK(site.last_good() == 1u);
  CHECK(site.daemon->status().last_error().find("revoked") != std::string::npos);
}

TEST_CASE("a revocation list signed by the online key instead of the targets key is refused",
          "[rollout][revocation][security]") {
  OnVersionOne site(site_labels("lab"));
  pb::RevocationList list;
  list.set_schema(1);
  list.set_channel("edge");
  list.set_serial(1);
  auto* r = list.add_revoked();
  r->set_stack("kp");
  r->set_version(2);
  r->set_manifest_digest(site.entry(2).manifest_digest());
  auto c = site.catalog({site.entry(2)});
  c.set_revocations(sign_revocations(list, {*parse_secret_key(read_text(site.ws.online_key()))}));
  site.receive(c);
  CHECK(site.last_good() == 2u);
}

TEST_CASE("an agent running a revoked version reverts when a mark allows, else keeps running",
          "[rollout][revocation]") {
  const bool marked = GENERATE(true, false);
  OnVersionOne site(site_labels("lab"));
  if (marked) {
    site.receive(site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"all:site=lab"}))}));
  } else {
    site.receive(site.catalog({site.entry(2)}));
  }
  REQUIRE(site.last_good() == 2u);
  auto c = site.catalog({site.entry(1)});
  c.set_revocations(site.revocations(1, {2}));
  site.receive(c);
  INFO(site.log());
  if (marked) {
    CHECK(site.last_good() == 1u);
    CHECK(site.on_target() == 1);
  } else {
    CHECK(site.last_good() == 2u);
    CHECK(site.on_target() == 2);
    CHECK(site.daemon->status().last_error().find("kp@2 is revoked") != std::string::npos);
  }
}

TEST_CASE("a closed window holds a fetched version and the agent wakes to apply it when it opens",
          "[rollout][window]") {
  OnVersionOne site(site_labels("lab"));
  // Not on a multiple of the daemon's own 10 s checks: only a wake set for it lands on it.
  const int64_t opens = site.now_ms / 1000 + 3605;
  auto gate = std::make_shared<FakeGate>(opens);
  auto o = site_labels("lab");
  o.gate = gate;
  site.restart(o);
  auto c = site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"canary:site=lab"}))});
  auto* mine = c.add_windows();
  mine->set_selector("site=lab");
  mine->set_schedule("0 2 * * *");
  mine->set_duration("4h");
  mine->set_zone("UTC");
  auto* other = c.add_windows();
  *other = *mine;
  other->set_selector("site=plant-7");
  site.receive(c);
  INFO(site.log());
  CHECK(site.last_good() == 1u);
  const auto& status = site.daemon->status();
  CHECK(status.state().rfind("waiting for window (opens ", 0) == 0);
  CHECK(status.window_opens_at() == opens);
  CHECK(status.window_digest() == site.entry(2).manifest_digest());
  // The gate sees the catalog's windows that name this agent, and only those.
  REQUIRE(gate->last_windows().size() == 1);
  CHECK(gate->last_windows()[0].selector() == "site=lab");
  // The owner's loop: sleep until next_tick_ms, tick.
  while (site.last_good() == 1u && site.now_ms < opens * 1000 + 60'000) {
    site.tick_at(site.daemon->next_tick_ms(site.now_ms));
  }
  CHECK(site.last_good() == 2u);
  CHECK(site.now_ms == opens * 1000);
  CHECK(site.daemon->status().window_opens_at() == 0);
  CHECK(site.daemon->status().window_digest().empty());
}

TEST_CASE("a running rollout with ignore_windows applies while the windows are closed",
          "[rollout][window]") {
  OnVersionOne site(site_labels("lab"));
  auto o = site_labels("lab");
  auto gate = std::make_shared<FakeGate>(site.now_ms / 1000 + 3600);
  o.gate = gate;
  site.restart(o);
  auto r = site.rollout(7, 2, {"canary:site=lab"});
  r.set_ignore_windows(true);
  site.receive(site.catalog({with_rollout(site.entry(1), r)}));
  CHECK(site.last_good() == 2u);
  CHECK(gate->asked() == 0);
}

TEST_CASE("a closed window holds a revert like any change of version", "[rollout][window]") {
  OnVersionOne site(site_labels("lab"));
  site.receive(site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"all:site=lab"}))}));
  REQUIRE(site.last_good() == 2u);
  auto o = site_labels("lab");
  const int64_t opens = site.now_ms / 1000 + 600;
  o.gate = std::make_shared<FakeGate>(opens);
  site.restart(o);
  site.receive(site.catalog(
      {with_rollout(site.entry(1), aborted_with_revert(site.rollout(7, 2, {"all:site=lab"})))}));
  CHECK(site.last_good() == 2u);
  site.tick_at(opens * 1000);
  CHECK(site.last_good() == 1u);
}

TEST_CASE("with prefetch an agent no wave admits fetches the rollout's version, never applies it",
          "[rollout][prefetch]") {
  const bool prefetch = GENERATE(true, false);
  RolloutSite site(site_labels("plant-7", prefetch));
  site.add_version(1);
  site.receive(site.catalog({site.entry(1)}));
  REQUIRE(site.last_good() == 1u);
  // kp@2 is not in the cache: the hub would have to send it (nobody answers here).
  auto r = site.rollout(7, 2, {"canary:site=lab"});
  r.set_manifest_digest(std::string(32, '\x42'));
  site.receive(site.catalog({with_rollout(site.entry(1), r)}));
  INFO(site.log());
  CHECK(site.daemon->status().fetching_version() == (prefetch ? 2u : 0u));
  CHECK(site.last_good() == 1u);
}

TEST_CASE("a prefetched version in the cache waits for a wave to admit the agent",
          "[rollout][prefetch]") {
  OnVersionOne site(site_labels("plant-7", true));
  const auto c = [&](const std::string& wave) {
    return site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {wave}))});
  };
  site.receive(c("canary:site=lab"));
  CHECK(site.last_good() == 1u);
  site.receive(c("plants:site=plant-7"));
  CHECK(site.last_good() == 2u);
}

TEST_CASE("the status carries the labels and the newest version that failed here",
          "[rollout][status]") {
  OnVersionOne site(site_labels("lab"));
  REQUIRE_FALSE(site.daemon->status().labels().empty());
  REQUIRE(store::FailedBundles(*site.db).add(
      {site.entry(2).manifest_digest(), "kp", 2, "unhealthy", 1}));
  REQUIRE(store::FailedBundles(*site.db).add({std::string(32, '\x01'), "kp", 0, "older", 1}));
  mqtt::Event connected;
  connected.kind = mqtt::Event::Kind::connected;
  REQUIRE(site.daemon->handle(connected, site.now_ms));
  CHECK(site.daemon->status().failed_version() == 2);
  CHECK(site.daemon->status().failed_digest() == site.entry(2).manifest_digest());
  CHECK(site.daemon->status().labels().at("site") == "lab");
}

TEST_CASE("offline apply leaves alone a cached rollout version the catalog does not give the agent",
          "[rollout][offline]") {
  SECTION("prefetched, not admitted") {
    OnVersionOne site(site_labels("plant-7", true));
    site.receive(
        site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"canary:site=lab"}))}));
    REQUIRE(site.daemon->apply_cached(site.now_ms));
    CHECK(site.last_good() == 1u);
  }
  SECTION("reverted from") {
    OnVersionOne site(site_labels("lab"));
    site.receive(site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"all:site=lab"}))}));
    REQUIRE(site.last_good() == 2u);
    site.receive(site.catalog(
        {with_rollout(site.entry(1), aborted_with_revert(site.rollout(7, 2, {"all:site=lab"})))}));
    REQUIRE(site.last_good() == 1u);
    REQUIRE(site.daemon->apply_cached(site.now_ms));
    CHECK(site.last_good() == 1u);
  }
  SECTION("a bundle imported by hand, newer than any catalog says, is still applied") {
    OnVersionOne site(site_labels("plant-7"));
    REQUIRE(site.daemon->apply_cached(site.now_ms));
    CHECK(site.last_good() == 2u);
  }
}

TEST_CASE("a version waiting for its window is dropped when the rollout is paused",
          "[rollout][window]") {
  OnVersionOne site(site_labels("lab"));
  auto o = site_labels("lab");
  const int64_t opens = site.now_ms / 1000 + 600;
  o.gate = std::make_shared<FakeGate>(opens);
  site.restart(o);
  site.receive(site.catalog({with_rollout(site.entry(1), site.rollout(7, 2, {"all:site=lab"}))}));
  REQUIRE(site.daemon->status().window_opens_at() == opens);
  site.receive(site.catalog(
      {with_rollout(site.entry(1), site.rollout(7, 2, {"all:site=lab"}, State::PAUSED))}));
  CHECK(site.daemon->status().window_opens_at() == 0);
  CHECK(site.daemon->status().state() == "healthy");
  site.tick_at(opens * 1000);
  CHECK(site.last_good() == 1u);
}

TEST_CASE("drift correction re-applies the applied version while the window is closed",
          "[rollout][window]") {
  OnVersionOne site(site_labels("lab"));
  auto o = site_labels("lab");
  o.gate = std::make_shared<FakeGate>(site.now_ms / 1000 + 86400);
  o.reconcile_ms = 60'000;
  site.restart(o);
  site.tick_at(site.now_ms + 1000);  // the reconcile at start
  site.drift();
  REQUIRE(site.on_target() == 0);
  site.tick_at(site.now_ms + 61'000);
  CHECK(site.on_target() == 1);
}

TEST_CASE("drift correction never re-applies a revoked version", "[rollout][revocation]") {
  OnVersionOne site(site_labels("lab"));
  auto o = site_labels("lab");
  o.reconcile_ms = 60'000;
  site.restart(o);
  auto c = site.catalog({site.entry(1)});
  c.set_revocations(site.revocations(1, {1}));
  site.receive(c);
  site.tick_at(site.now_ms + 1000);
  site.drift();
  site.tick_at(site.now_ms + 61'000);
  CHECK(site.on_target() == 0);
  CHECK(site.last_good() == 1u);
  CHECK(site.daemon->status().last_error().find("kp@1 is revoked") != std::string::npos);
}

TEST_CASE("a failed apply does not roll back to a revoked last good", "[rollout][revocation]") {
  auto o = site_labels("lab");
  RolloutSite site(o);
  // Refuses version 2 (its ConfigMap says "v2"), takes anything else.
  o.exec_command = "sh -c 'cat > " + site.state + "/in; grep -q value.:.v2 " + site.state +
                   "/in && exit 3; exit 0'";
  site.restart(o);
  site.add_version(1);
  site.receive(site.catalog({site.entry(1)}));
  REQUIRE(site.last_good() == 1u);
  site.add_version(2);
  auto c = site.catalog({site.entry(2)});
  c.set_revocations(site.revocations(1, {1}));
  site.receive(c);
  const std::string log = site.log();
  INFO(log);
  CHECK(log.find("not rolling back to kp@1: it is revoked") != std::string::npos);
  CHECK(log.find("rolled back to") == std::string::npos);
  CHECK(site.daemon->status().state() == "degraded");
}
