#include "hub/fleet.hpp"

#include <algorithm>
#include <set>

#include "bundles/hash.hpp"
#include "bundles/keys.hpp"
#include "bundles/trust.hpp"

namespace sovdev::hub {
namespace {

// The SovDev stack's rows and columns, in the order people read them; anything else an agent
// reports follows, sorted.
const std::vector<std::pair<std::string, std::string>>& known_services() {
  static const std::vector<std::pair<std::string, std::string>> rows = {
      {"kubernetes", "Kubernetes"}, {"traefik", "Traefik"},     {"postgresql", "PostgreSQL"},
      {"redis", "Redis"},           {"authentik", "Authentik"}, {"ai-platform", "AI Platform"},
      {"grafana", "Grafana"}};
  return rows;
}
const std::vector<std::string> kEnvironments = {"dev", "staging", "prod", "edge"};

// Worse states win a cell; unknown states rank with "progressing".
int rank(const std::string& state) {
  if (state == "healthy" || state == "external") return 1;
  if (state == "degraded" || state == "failed") return 5;
  if (state == "offline") return 4;
  return 3;
}

template <typename T>
std::vector<T> known_first(const std::vector<T>& known, const std::set<T>& seen) {
  std::vector<T> out;
  for (const auto& k : known) {
    if (seen.count(k)) out.push_back(k);
  }
  for (const auto& s : seen) {
    if (std::find(known.begin(), known.end(), s) == known.end()) out.push_back(s);
  }
  return out;
}

void add_to_cell(Cell& cell, const std::string& state, const std::string& message) {
  const bool good = is_good_state(state);
  cell.agents++;
  if (good) cell.good++;
  if (cell.state.empty() || rank(state) > rank(cell.state)) cell.state = state;
  if ((!good && (cell.message.empty() || cell.good == cell.agents - 1)) || cell.message.empty()) {
    cell.message = message;
  }
}

}  // namespace

bool is_good_state(const std::string& state) {
  return state == "healthy" || state == "external";
}

std::string Cell::text() const {
  if (state.empty()) return "-";
  if (agents <= 1) return state;
  return state + " " + std::to_string(good) + "/" + std::to_string(agents);
}

FleetView make_fleet_view(const std::vector<store::AgentRecord>& records,
                          const BundleLookup& published) {
  FleetView view;
  for (const auto& r : records) {
    AgentView a;
    if (!a.status.ParseFromString(r.status)) continue;
    a.agent_id = r.agent_id;
    a.channel = r.channel;
    a.digest = a.status.applied_digest();
    pb::AgentStatus prior;
    // A last will names no bundle; the status it replaced does.
    if (a.digest.empty() && !r.prior_status.empty() && prior.ParseFromString(r.prior_status)) {
      a.digest = prior.applied_digest();
    }
    const auto bundle = a.digest.empty() ? std::nullopt : published(a.digest);
    a.known_bundle = bundle.has_value();
    if (bundle) {
      a.environment = bundle->environment;
      a.stack = bundle->stack;
      a.version = bundle->version;
    } else {
      a.environment = std::string(a.digest.empty() ? kNoBundle : kUnknownBundle);
    }
    a.last_seen = r.seen_at;
    view.agents.push_back(std::move(a));
  }
  // The last will carries no services: an offline agent is offline in every row its
  // environment has.
  std::set<std::string> environments;
  std::set<std::string> services;
  for (const auto& a : view.agents) {
    environments.insert(a.environment);
    for (const auto& s : a.status.services()) services.insert(s.service());
  }
  std::vector<std::string> known_rows;
  for (const auto& [service, title] : known_services()) known_rows.push_back(service);
  view.environments = known_first(kEnvironments, environments);
  for (const auto& service : known_first(known_rows, services)) {
    ServiceRow row;
    row.service = service;
    row.title = service;
    for (const auto& [s, title] : known_services()) {
      if (s == service) row.title = title;
    }
    for (const auto& a : view.agents) {
      Cell& cell = row.cells[a.environment];
      if (a.status.state() == "offline") {
        add_to_cell(cell, "offline", "agent " + a.status.agent_id() + " is offline");
        continue;
      }
      for (const auto& s : a.status.services()) {
        if (s.service() == service) add_to_cell(cell, s.state(), s.message());
      }
    }
    view.rows.push_back(std::move(row));
  }
  return view;
}

Expected<std::optional<PublishedBundle>> find_published(store::Database& db,
                                                        std::string_view digest) {
  if (digest.size() != kDigestSize) return std::optional<PublishedBundle>();
  SOVDEV_ASSIGN(auto held, store::HubBundles(db).find(digest));
  if (!held) return std::optional<PublishedBundle>();
  PublishedBundle out{held->channel, held->stack, held->version, held->channel};
  // The hub stored this envelope itself, after verifying it at publish: parsing is enough.
  auto envelope = parse_signed(held->envelope, kTypeManifest, kMaxManifestBytes);
  pb::BundleManifest manifest;
  if (envelope && manifest.ParseFromString(envelope->body()) && !manifest.environment().empty()) {
    out.environment = manifest.environment();
  }
  return std::optional<PublishedBundle>(std::move(out));
}

Expected<FleetView> load_fleet_view(store::Database& db) {
  store::FleetStatus fleet(db);
  SOVDEV_ASSIGN(auto records, fleet.list());
  // Many agents run one bundle: each digest is looked up once.
  std::map<std::string, std::optional<PublishedBundle>, std::less<>> seen;
  std::optional<Error> failed;
  auto view = make_fleet_view(records, [&](std::string_view digest) {
    auto it = seen.find(digest);
    if (it != seen.end()) return it->second;
    auto found = find_published(db, digest);
    if (!found) {
      failed = std::move(found).error();
      return std::optional<PublishedBundle>();
    }
    return seen.emplace(std::string(digest), *found).first->second;
  });
  if (failed) return std::move(*failed).context("look up the bundles agents report");
  return view;
}

}  // namespace sovdev::hub
