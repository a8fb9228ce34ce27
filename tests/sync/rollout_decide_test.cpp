// rollout::decide on its own: what an agent runs of one catalog entry, given its labels, its
// last good version, its open rollout mark and the revoked digests.
#include <catch2/catch.hpp>

#include <set>

#include "agent/rollout/decide.hpp"

using namespace sovdev;
using namespace sovdev::agent::rollout;
using State = pb::CatalogRollout;

namespace {

std::string digest_of(int n) {
  return std::string(32, static_cast<char>('a' + n));
}

pb::CatalogEntry entry_of(uint64_t version, std::optional<State::State> rollout = std::nullopt,
                          const std::string& selector = "site=lab", uint64_t rollout_version = 2) {
  pb::CatalogEntry e;
  e.set_stack("kp");
  e.set_version(version);
  e.set_manifest_digest(digest_of(static_cast<int>(version)));
  e.add_arch("amd64");
  if (rollout) {
    auto* r = e.mutable_rollout();
    r->set_id(7);
    r->set_version(rollout_version);
    r->set_manifest_digest(digest_of(static_cast<int>(rollout_version)));
    r->add_arch("amd64");
    auto* w = r->add_admitted();
    w->set_name("w");
    w->set_selector(selector);
    w->set_percent(100);
    r->set_state(*rollout);
  }
  return e;
}

struct DecidingAgent {
  Labels labels{{"site", "lab"}};
  std::optional<Held> good;
  std::optional<OpenMark> mark;
  std::set<std::string> revoked;
  bool prefetch = false;
  Decision decide(const pb::CatalogEntry& e) const {
    return agent::rollout::decide(
        e, {labels, "edge-1", "amd64", good, mark,
            [this](std::string_view x) { return revoked.count(std::string(x)) > 0; }, prefetch});
  }
};

}  // namespace

TEST_CASE("decide: an admitted agent's goal is the rollout's version, others the entry's") {
  DecidingAgent a;
  a.good = Held{1, digest_of(1)};
  auto got = a.decide(entry_of(1, State::RUNNING));
  REQUIRE(got.want);
  CHECK(got.want->kind == GoalKind::rollout);
  CHECK(got.want->version == 2);
  CHECK(got.want->rollout_id == 7);
  a.labels = {{"site", "plant"}};
  got = a.decide(entry_of(1, State::RUNNING));
  REQUIRE(got.want);
  CHECK(got.want->kind == GoalKind::current);
  CHECK(got.want->version == 1);
}

TEST_CASE("decide: a rollout not built for the agent's architecture does not admit it") {
  DecidingAgent a;
  auto e = entry_of(1, State::RUNNING);
  e.mutable_rollout()->clear_arch();
  e.mutable_rollout()->add_arch("arm64");
  CHECK(a.decide(e).want->version == 1);
}

TEST_CASE("decide: who runs a paused rollout's version keeps it; nobody starts it") {
  DecidingAgent a;
  a.good = Held{2, digest_of(2)};
  CHECK(a.decide(entry_of(1, State::PAUSED)).want->version == 2);
  a.good = Held{1, digest_of(1)};
  CHECK(a.decide(entry_of(1, State::PAUSED)).want->version == 1);
}

TEST_CASE(
    "decide: revert needs the abort with revert, the last good being the rollout's, and the mark") {
  DecidingAgent a;
  a.good = Held{2, digest_of(2)};
  a.mark = OpenMark{7, digest_of(2), Held{1, digest_of(1)}};
  auto e = entry_of(1, State::ABORTED);
  e.mutable_rollout()->set_revert(true);
  auto got = a.decide(e);
  REQUIRE(got.want);
  CHECK(got.want->kind == GoalKind::revert);
  CHECK(got.want->digest == digest_of(1));
  SECTION("no revert flag") {
    e.mutable_rollout()->set_revert(false);
    CHECK(a.decide(e).want->kind != GoalKind::revert);
  }
  SECTION("the mark is of another rollout") {
    a.mark->rollout_id = 8;
    CHECK(a.decide(e).want->kind != GoalKind::revert);
  }
  SECTION("no mark") {
    a.mark.reset();
    CHECK(a.decide(e).want->kind != GoalKind::revert);
  }
  SECTION("the mark names no prior") {
    a.mark->prior.reset();
    CHECK(a.decide(e).want->kind != GoalKind::revert);
  }
  SECTION("the prior is revoked") {
    a.revoked.insert(digest_of(1));
    CHECK(a.decide(e).want->kind != GoalKind::revert);
  }
}

TEST_CASE("decide: a revoked version is no goal, and a revoked running version is said") {
  DecidingAgent a;
  a.good = Held{1, digest_of(1)};
  a.revoked = {digest_of(2)};
  CHECK(a.decide(entry_of(1, State::RUNNING)).want->version == 1);
  auto got = a.decide(entry_of(2));
  CHECK_FALSE(got.want);
  CHECK(got.note.find("revoked") != std::string::npos);
  a.revoked = {digest_of(1)};
  got = a.decide(entry_of(1));
  CHECK(got.note.find("kp@1 is revoked") != std::string::npos);
}

TEST_CASE("decide: prefetch only for a running rollout, when the agent runs the entry's version") {
  DecidingAgent a;
  a.labels = {{"site", "plant"}};
  a.prefetch = true;
  a.good = Held{1, digest_of(1)};
  auto got = a.decide(entry_of(1, State::RUNNING));
  REQUIRE(got.prefetch);
  CHECK(got.prefetch->version == 2);
  CHECK_FALSE(a.decide(entry_of(1, State::PAUSED)).prefetch);
  a.good = Held{0, digest_of(0)};
  CHECK_FALSE(a.decide(entry_of(1, State::RUNNING)).prefetch);
  a.good = Held{1, digest_of(1)};
  a.prefetch = false;
  CHECK_FALSE(a.decide(entry_of(1, State::RUNNING)).prefetch);
}
