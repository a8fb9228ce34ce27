// What the operator's rollout commands do to hub.db and what the next catalog then says
// (docs/design-rollouts.md): the held version stays current while a rollout runs; the rollout
// is listed running, paused, aborted (with revert), and gone once released or completed; serve's
// driver takes the gates' steps and names the channels to sign again; revocation lists grow by
// serial; a window that would make the catalog too large for agents is refused.
#include <catch2/catch.hpp>

#include <filesystem>

#include "bundles/keys.hpp"
#include "bundles/trust.hpp"
#include "hub/catalog.hpp"
#include "hub/rollout/operations.hpp"
#include "hub/rollout/serve_rollouts.hpp"
#include "platform/store/hub_store.hpp"

using namespace sovdev;
using namespace sovdev::hub;
using namespace sovdev::hub::rollout;

namespace {

constexpr std::int64_t kNow = 2'000'000;

std::string digest_of(std::uint64_t version) {
  return std::string(31, 'd') + static_cast<char>('0' + version);
}

struct Hub {
  std::filesystem::path dir;
  store::Database db;
  Hub()
      : dir(std::filesystem::temp_directory_path() /
            ("rollout_catalog_" + std::to_string(::getpid()) + "_" +
             std::to_string(reinterpret_cast<std::uintptr_t>(this)))),
        db(open(dir)) {}
  ~Hub() { std::filesystem::remove_all(dir); }
  static store::Database open(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    auto opened = store::open_hub_database((dir / "hub.db").string());
    REQUIRE(opened);
    return std::move(*opened);
  }

  // A bundle row as publish stores it (the envelope unsigned: the catalog only parses it).
  void publish(std::uint64_t version, const std::string& stack = "kp") {
    pb::BundleManifest m;
    m.set_stack(stack);
    m.set_channel("prod");
    m.set_version(version);
    m.add_arch("amd64");
    pb::Signed envelope;
    envelope.set_type("manifest");
    envelope.set_body(m.SerializeAsString());
    store::HubBundle b;
    b.digest = digest_of(version);
    b.channel = "prod";
    b.stack = stack;
    b.version = version;
    b.envelope = envelope.SerializeAsString();
    REQUIRE(store::HubBundles(db).put_bundle(b, [](std::uint32_t) { return std::string(); }));
  }

  pb::Catalog catalog() {
    auto c = catalog_content(db, "prod");
    REQUIRE(c);
    return *c;
  }

  void report(const std::string& agent, const std::string& site, std::uint64_t version,
              std::int64_t at) {
    pb::AgentStatus st;
    st.set_agent_id(agent);
    st.set_channel("prod");
    st.set_state("healthy");
    st.set_applied_digest(digest_of(version));
    (*st.mutable_labels())["site"] = site;
    st.set_updated_at(at);
    REQUIRE(store::FleetStatus(db).upsert({agent, "prod", st.SerializeAsString(), at}, at));
  }
};

StartRequest canary_then_all() {
  StartRequest r;
  r.channel = "prod";
  r.stack = "kp";
  r.version = 5;
  r.waves = {"canary:site=lab", "all:*"};
  r.success = "100%";
  r.within = "30m";
  r.abort_failed = "2";
  r.rollback_on_abort = true;
  return r;
}

}  // namespace

TEST_CASE("a held stack keeps its version in the catalog while its rollout runs") {
  Hub hub;
  hub.publish(4);
  REQUIRE(hold_current(hub.db, "prod", "kp", kNow));
  hub.publish(5);
  pb::Catalog c = hub.catalog();
  REQUIRE(c.entries_size() == 1);
  CHECK(c.entries(0).version() == 4);
  CHECK_FALSE(c.entries(0).has_rollout());

  auto started = start_rollout(hub.db, canary_then_all(), kNow);
  REQUIRE(started);
  c = hub.catalog();
  CHECK(c.entries(0).version() == 4);
  REQUIRE(c.entries(0).has_rollout());
  const pb::CatalogRollout& r = c.entries(0).rollout();
  CHECK(r.id() == started->id);
  CHECK(r.version() == 5);
  CHECK(r.manifest_digest() == digest_of(5));
  CHECK(r.state() == pb::CatalogRollout::RUNNING);
  REQUIRE(r.admitted_size() == 1);  // only the first wave is open
  CHECK(r.admitted(0).selector() == "site=lab");
  CHECK(r.arch_size() == 1);
  CHECK_FALSE(r.revert());

  // Paused, then aborted with --rollback-on-abort: still listed, so offline agents hear of it.
  REQUIRE(change_rollout(hub.db, started->id, Change::pause, kNow + 1));
  CHECK(hub.catalog().entries(0).rollout().state() == pb::CatalogRollout::PAUSED);
  auto released_early = release_hold(hub.db, "prod", "kp");
  REQUIRE_FALSE(released_early);
  CHECK(released_early.error().code == Errc::conflict);
  REQUIRE(change_rollout(hub.db, started->id, Change::abort, kNow + 2));
  c = hub.catalog();
  CHECK(c.entries(0).version() == 4);
  CHECK(c.entries(0).rollout().state() == pb::CatalogRollout::ABORTED);
  CHECK(c.entries(0).rollout().revert());

  // Released: the newest is current and the old rollout is no longer listed.
  auto was = release_hold(hub.db, "prod", "kp");
  REQUIRE(was);
  CHECK(*was == 4);
  c = hub.catalog();
  CHECK(c.entries(0).version() == 5);
  CHECK_FALSE(c.entries(0).has_rollout());
}

TEST_CASE("rollout start refuses what the design forbids, each with its own error") {
  Hub hub;
  hub.publish(4);
  hub.publish(5);
  StartRequest r = canary_then_all();
  auto not_held = start_rollout(hub.db, r, kNow);  // 5 is the newest and nothing is held
  REQUIRE_FALSE(not_held);
  CHECK(not_held.error().code == Errc::rollback);
  CHECK(not_held.error().message.find("--hold") != std::string::npos);

  REQUIRE(store::StackHolds(hub.db).set({"prod", "kp", 4, kNow}));
  r.version = 6;
  auto missing = start_rollout(hub.db, r, kNow);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::not_found);
  CHECK(missing.error().message.find("published: 4, 5") != std::string::npos);

  r.version = 5;
  r.waves = {"canary:site=lab", "canary:*"};
  CHECK(start_rollout(hub.db, r, kNow).error().code == Errc::usage);
  r = canary_then_all();
  r.abort_failed = "ten";
  CHECK(start_rollout(hub.db, r, kNow).error().code == Errc::usage);
  r = canary_then_all();
  r.within = "1h30";
  CHECK(start_rollout(hub.db, r, kNow).error().code == Errc::usage);

  REQUIRE(start_rollout(hub.db, canary_then_all(), kNow));
  auto twice = start_rollout(hub.db, canary_then_all(), kNow);
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == Errc::conflict);
}

TEST_CASE("serve's driver opens waves, completes with the hold moved and names what to sign") {
  Hub hub;
  hub.publish(4);
  REQUIRE(hold_current(hub.db, "prod", "kp", kNow));
  hub.publish(5);
  hub.report("lab-1", "lab", 4, kNow);
  hub.report("plant-1", "plant", 4, kNow);
  auto started = start_rollout(hub.db, canary_then_all(), kNow);
  REQUIRE(started);

  RolloutDriver driver(hub.db);
  auto first = driver.tick(kNow + 1);
  REQUIRE(first);
  // A driver that never signed signs every channel changed since the database began.
  REQUIRE(*first == std::vector<std::string>{"prod"});
  driver.signed_at("prod", driver.pending_count("prod"));
  CHECK(driver.tick(kNow + 2)->empty());

  // Nothing reported, before the quiet pass is due: the gates do not even read the statuses.
  hub.report("lab-1", "lab", 5, kNow + 3);
  CHECK(driver.tick(kNow + 4)->empty());
  driver.status_recorded();  // what serve says when it records one
  CHECK(*driver.tick(kNow + 4) == std::vector<std::string>{"prod"});  // the next wave opened
  driver.signed_at("prod", driver.pending_count("prod"));
  CHECK(hub.catalog().entries(0).rollout().admitted_size() == 2);

  hub.report("plant-1", "plant", 5, kNow + 5);
  driver.status_recorded();
  CHECK(*driver.tick(kNow + 6) == std::vector<std::string>{"prod"});
  auto done = store::Rollouts(hub.db).find(started->id);
  REQUIRE(done);
  CHECK((*done)->state == store::RolloutState::completed);
  const pb::Catalog c = hub.catalog();
  CHECK(c.entries(0).version() == 5);  // the hold moved to the rollout's version
  CHECK_FALSE(c.entries(0).has_rollout());
  CHECK(driver.steps_taken() == 2);

  // The operator's command moves the counter too: a new driver (a restarted hub) signs again.
  driver.signed_at("prod", driver.pending_count("prod"));
  REQUIRE(release_hold(hub.db, "prod", "kp"));
  CHECK(*driver.tick(kNow + 7) == std::vector<std::string>{"prod"});
}

TEST_CASE("revoke signs the next list with the old entries and refuses what it cannot revoke") {
  Hub hub;
  hub.publish(4);
  hub.publish(5);
  const SecretKey targets = generate_key("targets");
  RevokeRequest req{"prod", "kp", 4, "CVE-1", {targets}};
  auto first = revoke_version(hub.db, req, kNow);
  REQUIRE(first);
  CHECK(first->serial() == 1);
  req.version = 5;
  req.reason = "bad config";
  auto second = revoke_version(hub.db, req, kNow + 1);
  REQUIRE(second);
  CHECK(second->serial() == 2);
  REQUIRE(second->revoked_size() == 2);
  CHECK(second->revoked(0).reason() == "CVE-1");
  CHECK(second->revoked(1).manifest_digest() == digest_of(5));

  CHECK(revoke_version(hub.db, req, kNow + 2).error().code == Errc::conflict);
  req.version = 9;
  CHECK(revoke_version(hub.db, req, kNow + 2).error().code == Errc::not_found);

  // The catalog carries the newest envelope, signed by the key given.
  const pb::Catalog c = hub.catalog();
  auto envelope = parse_signed(c.revocations(), kTypeRevocations, kMaxCatalogBytes);
  REQUIRE(envelope);
  REQUIRE(envelope->signatures_size() == 1);
  pb::RevocationList list;
  REQUIRE(list.ParseFromString(envelope->body()));
  CHECK(list.serial() == 2);
}

TEST_CASE("windows reach their channel's catalog and one that would overflow it is refused") {
  Hub hub;
  hub.publish(4);
  store::HubWindow bad{0, "prod", "site=lab", false, "0 2 * *", "2h", "UTC", 0};
  CHECK(add_window(hub.db, bad, kNow).error().code == Errc::usage);
  bad.schedule = "0 2 * * *";
  bad.zone = "../etc/passwd";
  CHECK(add_window(hub.db, bad, kNow).error().code == Errc::usage);

  REQUIRE(add_window(
      hub.db, {0, "prod", "site = lab", true, "0 8 * * 1-5", "9h", "Europe/Berlin", 0}, kNow));
  REQUIRE(add_window(hub.db, {0, "dev", "", false, "0 2 * * *", "2h", "UTC", 0}, kNow));
  pb::Catalog c = hub.catalog();
  REQUIRE(c.windows_size() == 1);
  CHECK(c.windows(0).deny());
  CHECK(c.windows(0).selector() == "site=lab");  // canonical text
  CHECK(c.windows(0).zone() == "Europe/Berlin");

  // Long selectors until the next window would not fit what agents accept.
  std::string selector = "id in (";
  for (int i = 0; i < 60; ++i)
    selector += (i ? "," : "") + std::string(10, 'a') + std::to_string(i);
  selector += ")";
  int added = 0;
  Status last;
  for (; added < 200; ++added) {
    auto id = add_window(hub.db, {0, "prod", selector, false, "0 2 * * *", "2h", "UTC", 0}, kNow);
    if (!id) {
      last = std::move(id).error();
      break;
    }
  }
  REQUIRE_FALSE(last);
  CHECK(last.error().code == Errc::too_large);
  CHECK(added > 10);
  // The refused window left nothing behind.
  CHECK(hub.catalog().windows_size() == added + 1);
}
