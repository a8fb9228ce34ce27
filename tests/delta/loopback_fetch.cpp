#include "tests/delta/loopback_fetch.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include "agent/fetch.hpp"
#include "bundles/messages.hpp"
#include "bundles/trust.hpp"
#include "platform/store/agent_cache.hpp"
#include "tests/delta/loopback_hub.hpp"

namespace sovdev::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The daemon's part around BundleFetch: data topic answers for this bundle handed over, the
// hub's and the agent's loops turned until the fetch ends.
std::string run_agent(LoopbackBus::Endpoint& agent, LoopbackHub& hub, agent::BundleFetch& fetch,
                      const std::string& digest) {
  const auto start = Clock::now();
  auto now_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  };
  if (auto ok = fetch.start(now_ms()); !ok) return ok.error().message;
  while (fetch.phase() != agent::BundleFetch::Phase::done &&
         fetch.phase() != agent::BundleFetch::Phase::failed) {
    if (now_ms() > 120000) return "the fetch did not end within 120 s";
    auto turned = hub.turn();
    if (!turned) return "hub: " + turned.error().message;
    bool busy = *turned;
    while (auto e = agent.next({})) {
      busy = true;
      if (e->kind != mqtt::Event::Kind::message) continue;
      if (e->message.topic.find("/data") == std::string::npos) continue;
      auto resp = parse_fetch_response(e->message.payload);
      if (!resp || resp->manifest_digest() != digest) continue;
      if (auto ok = fetch.on_response(*resp, now_ms()); !ok) return ok.error().message;
    }
    if (auto ok = fetch.flush(now_ms()); !ok) return ok.error().message;
    if (auto ok = fetch.on_tick(now_ms()); !ok) return ok.error().message;
    if (!busy) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return fetch.phase() == agent::BundleFetch::Phase::done ? "" : fetch.error();
}

}  // namespace

LoopbackResult fetch_upgrade_over_loopback(const LoopbackUpgrade& u) {
  namespace fsys = std::filesystem;
  LoopbackResult out;
  auto fail = [&](const std::string& what, const Error& e) {
    out.error = what + ": " + e.message;
    return out;
  };
  fsys::remove_all(u.dir);
  fsys::create_directories(u.dir);
  auto trust = TrustPolicy::from_initial(u.trust_root);
  if (!trust) return fail("trust", trust.error());

  LoopbackBus bus;
  LoopbackHub hub(u.dir, u.trust_root, u.publisher, bus.add("hub"));
  hub.strip_one_answer_fields(u.old_agent);
  hub.hold_delta_answers(u.delta_hold_ms);
  if (auto c = hub.publish(u.base_file); !c) return fail("publish the base", c.error());
  if (auto ok = hub.start(); !ok) return fail("serve", ok.error());

  const std::string prefix = hub.prefix();
  const std::string catalog_topic = hub.catalog_topic(u.channel);
  const int agents = u.agents_before + 1;
  std::vector<LoopbackBus::Endpoint*> eps;
  std::vector<std::unique_ptr<store::Database>> dbs;
  for (int i = 0; i < agents; i++) {
    const std::string id = "edge-" + std::to_string(i);
    const std::string path = u.dir + "/" + id + ".db";
    fsys::copy_file(u.agent_db, path);
    auto db = store::open_agent_database(path);
    if (!db) return fail("agent database", db.error());
    dbs.push_back(std::make_unique<store::Database>(std::move(*db)));
    auto& ep = bus.add(id);
    // The daemon's standing subscriptions, made long before the upgrade.
    (void)ep.subscribe(catalog_topic, 1);
    (void)ep.subscribe(prefix + "/agent/" + id + "/data", 1);
    while (ep.next({})) {
    }
    ep.reset();
    eps.push_back(&ep);
  }

  // The upgrade is published: `sovdev-hub publish` sends the new catalog, retained.
  auto catalog_envelope = hub.publish(u.target_file);
  if (!catalog_envelope) return fail("publish the target", catalog_envelope.error());
  mqtt::Message catalog;
  catalog.topic = catalog_topic;
  catalog.payload = *catalog_envelope;
  catalog.retained = true;
  auto& publisher = bus.add("sovdev-hub publish");
  if (auto ok = publisher.publish(catalog); !ok) return fail("catalog", ok.error());

  for (int i = 0; i < agents; i++) {
    // The agent reads the catalog it was sent: the digest it fetches comes from there.
    std::string digest;
    uint64_t version = 0;
    while (auto e = eps[i]->next({})) {
      if (e->message.topic != catalog.topic) continue;
      auto cat = trust->verify_catalog(e->message.payload);
      if (!cat) return fail("catalog", cat.error());
      for (const auto& entry : cat->entries()) {
        if (entry.stack() == u.stack) {
          digest = entry.manifest_digest();
          version = entry.version();
        }
      }
    }
    if (digest.empty() || version <= u.base_version) {
      out.error = "the catalog does not name the upgrade";
      return out;
    }
    agent::FetchSettings settings;
    settings.agent_id = "edge-" + std::to_string(i);
    settings.prefix = prefix;
    settings.install = {u.channel, ""};
    settings.work_dir = u.dir + "/" + settings.agent_id + "-work";
    agent::FetchCounters counters;
    agent::FetchGoal goal{u.stack, version, digest, store::LastGood{u.base_version, u.base_digest}};
    agent::BundleFetch fetch(*dbs[i], *trust, *eps[i], settings, counters, goal);
    out.error = run_agent(*eps[i], hub, fetch, digest);
    if (!out.error.empty()) return out;
    out.used_delta = fetch.used_delta();
  }
  out.packets = eps.back()->packets();
  out.bytes = eps.back()->bytes();
  return out;
}

}  // namespace sovdev::testing
