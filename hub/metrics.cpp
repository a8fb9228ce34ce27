#include "hub/metrics.hpp"

#include <ctime>
#include <map>
#include <vector>

#include "bundles/rollout_rules.hpp"
#include "hub/fleet.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub::metrics {
namespace {

// Fetch requests are answered in well under a millisecond to tens of milliseconds (a window
// of chunks read from SQLite and published); the upper buckets catch a delta being built.
std::vector<double> request_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// Every state an agent may report (bundles/messages.cpp refuses others), each always present
// so a dashboard's "how many degraded" reads 0 rather than "no data".
constexpr std::string_view kStates[] = {"idle",     "fetching", "verifying", "applying",
                                        "checking", "healthy",  "degraded",  "rolled_back",
                                        "offline",  "failed"};

bool service_up(const std::string& state) {
  // "external": the environment uses a managed service (prod's Azure PostgreSQL and Redis),
  // which the agent does not run and counts as available.
  return state == "healthy" || state == "external";
}

}  // namespace

LoopFigures::LoopFigures() : request_duration(request_buckets()) {}

void LiveFigures::update(const ServeStats& stats) {
  std::lock_guard lock(mutex_);
  figures_.stats = stats;
}

void LiveFigures::observe_request(std::chrono::steady_clock::duration took) {
  const double seconds = std::chrono::duration<double>(took).count();
  std::lock_guard lock(mutex_);
  figures_.request_duration.observe(seconds);
}

LoopFigures LiveFigures::snapshot() const {
  std::lock_guard lock(mutex_);
  return figures_;
}

void render_loop(Writer& w, const LoopFigures& f, const RenderOptions& options) {
  const ServeStats& s = f.stats;
  w.family("sovdev_hub_up", Type::gauge, "1 while the hub serves (a failed scrape means down).");
  w.sample({}, std::uint64_t{1});
  w.family("sovdev_hub_build_info", Type::gauge, "The hub's version, as a label; always 1.");
  w.sample({{"version", options.version}}, std::uint64_t{1});
  w.family("sovdev_hub_requests_total", Type::counter,
           "Fetch requests received from agents, rejected ones included.");
  w.sample({}, s.requests);
  w.family("sovdev_hub_manifests_served_total", Type::counter, "Signed manifests sent to agents.");
  w.sample({}, s.manifests_sent);
  w.family("sovdev_hub_chunks_served_total", Type::counter,
           "Chunks sent to agents, by kind: full (a bundle's stored payload), delta, or image "
           "(an image blob's wire form).");
  w.sample({{"kind", "full"}}, s.chunks_sent);
  w.sample({{"kind", "delta"}}, s.delta_chunks_sent);
  w.sample({{"kind", "image"}}, s.blobs.chunks_sent);
  w.family("sovdev_hub_image_blob_requests_total", Type::counter,
           "Requests for an image blob's manifest, by result: sent, or unknown (hub.db does not "
           "hold it: the bundle naming it was published without its images, or removed).");
  w.sample({{"result", "sent"}}, s.blobs.manifests_sent);
  w.sample({{"result", "unknown"}}, s.blobs.unknown);
  w.family("sovdev_hub_epoch_keys_total", Type::counter,
           "Requests for a channel's epoch key (sealed secrets): sent (the agent's sealed copy), "
           "refused (hub.db holds no grant for that agent and epoch: enrol or rotate it).");
  w.sample({{"result", "sent"}}, s.epoch_keys_sent);
  w.sample({{"result", "refused"}}, s.epoch_keys_refused);
  w.family("sovdev_hub_bytes_served_total", Type::counter,
           "Bytes of fetch responses (manifests, chunks, errors) the broker accepted.");
  w.sample({}, s.bytes_sent);
  w.family("sovdev_hub_rejected_messages_total", Type::counter,
           "Messages the hub refused: malformed, on a wrong topic, or naming another agent.");
  w.sample({}, s.rejected);
  w.family("sovdev_hub_status_messages_total", Type::counter,
           "Agent status messages accepted and recorded.");
  w.sample({}, s.statuses);
  w.family("sovdev_hub_send_failures_total", Type::counter,
           "Responses the broker did not accept (the agent asks again after its timeout).");
  w.sample({}, s.send_failures);
  // Issue #19 §3: what the hub held back from agents, and what its incoming queue holds.
  w.family("sovdev_hub_throttled_total", Type::counter,
           "Held back from one agent over its budget (hub serve --help): fetch requests dropped "
           "for their rate, chunks not served for its bytes a second.");
  w.sample({{"what", "requests"}}, s.requests_throttled);
  w.sample({{"what", "chunks"}}, s.chunks_throttled);
  w.family("sovdev_hub_refused_total", Type::counter,
           "Refused to one agent: chunks served to it too often already, new deltas over its "
           "share of the delta worker.");
  w.sample({{"what", "chunks"}}, s.chunks_refused);
  w.sample({{"what", "deltas"}}, s.deltas_refused);
  w.family("sovdev_hub_transfers", Type::gauge,
           "Full transfers of a stack being served (slots in use) and agents waiting for a slot "
           "(hub serve --max-transfers-per-stack).");
  w.sample({{"state", "serving"}}, s.transfers_in_use);
  w.sample({{"state", "waiting"}}, s.transfers_waiting);
  w.family("sovdev_hub_transfer_waits_total", Type::counter,
           "Chunk requests of full transfers left unanswered while their agent waited for a slot.");
  w.sample({}, s.transfer_waits);
  w.family("sovdev_hub_dropped_messages_total", Type::counter,
           "Incoming messages dropped before handling: the queue was full (count or bytes), or "
           "the message was larger than its topic allows.");
  w.sample({{"reason", "queue_full"}}, s.messages_dropped);
  w.sample({{"reason", "oversize"}}, s.messages_oversize);
  w.family("sovdev_hub_queue_bytes", Type::gauge,
           "Bytes of incoming messages waiting to be handled (topic, payload, properties).");
  w.sample({}, s.queue_bytes);
  w.family("sovdev_hub_queue_bytes_peak", Type::gauge,
           "The most bytes of incoming messages that ever waited at once since the start.");
  w.sample({}, s.queue_bytes_peak);
  w.histogram("sovdev_hub_request_duration_seconds",
              "Time the hub took to handle one fetch request (read, answer, publish).",
              f.request_duration);
}

Status render_fleet(Writer& w, store::Database& db) {
  // The view `sovdev-hub status` shows: environment, stack and version from the bundle the hub
  // published under the digest the agent reports (each digest looked up once), last seen by
  // the hub's clock. What an agent claims about them is never a label or a value here.
  SOVDEV_ASSIGN(FleetView view, load_fleet_view(db));
  const auto& agents = view.agents;

  std::map<std::string, std::uint64_t> by_state;
  for (auto state : kStates) by_state[std::string(state)] = 0;
  for (const auto& a : agents) by_state[a.status.state()]++;
  w.family("sovdev_agents", Type::gauge, "Agents by the state they last reported.");
  for (const auto& [state, n] : by_state) w.sample({{"state", state}}, n);

  w.family("sovdev_agent_info", Type::gauge,
           "One series per agent with its channel, state and agent version as it reports them, "
           "and the environment and stack of the bundle the hub published under the digest it "
           "reports (\"unknown bundle\" and an empty stack for a digest the hub never published, "
           "\"no bundle\" before the first apply); 1.");
  for (const auto& a : agents) {
    w.sample({{"agent", a.agent_id},
              {"channel", a.channel},
              {"environment", a.environment},
              {"stack", a.stack},
              {"state", a.status.state()},
              {"agent_version", a.status.agent_version()}},
             std::uint64_t{1});
  }
  // The labels rollout selectors match, as each agent reports them from its config. Only well
  // formed ones (bundles/rollout_rules.hpp) and at most kMaxLabels per agent: a status is the
  // agent's word, and a label value is a series here.
  w.family("sovdev_agent_label", Type::gauge,
           "One series per label of each agent's config ([labels], what rollout waves and "
           "maintenance windows select by): label and value as the agent reports them; 1.");
  for (const auto& a : agents) {
    std::size_t n = 0;
    for (const auto& [key, value] : a.status.labels()) {
      if (n == sovdev::rollout::kMaxLabels) break;
      if (key == sovdev::rollout::kIdKey || !sovdev::rollout::valid_label_key(key) ||
          !sovdev::rollout::valid_label_value(value)) {
        continue;
      }
      w.sample({{"agent", a.agent_id}, {"label", key}, {"value", value}}, std::uint64_t{1});
      n++;
    }
  }
  w.family("sovdev_agent_applied_version", Type::gauge,
           "Version of the bundle the hub published under the digest the agent reports (0: none "
           "applied yet, or a digest the hub never published, whatever version the agent claims).");
  for (const auto& a : agents) {
    w.sample({{"agent", a.agent_id}, {"channel", a.channel}, {"stack", a.stack}}, a.version);
  }

  // One gauge per agent and figure; `value` picks the figure from the agent's view.
  const auto per_agent = [&](std::string_view name, std::string_view help, auto value) {
    w.family(name, Type::gauge, help);
    for (const auto& a : agents) w.sample({{"agent", a.agent_id}}, value(a));
  };
  per_agent("sovdev_agent_last_seen_timestamp_seconds",
            "When the hub stored the agent's last status (unix seconds, the hub's clock).",
            [](const AgentView& a) { return static_cast<double>(a.last_seen); });
  per_agent("sovdev_agent_private_memory_bytes",
            "The agent's private (anonymous) resident memory, as it reported.",
            [](const AgentView& a) { return a.status.private_bytes(); });
  per_agent("sovdev_agent_rss_bytes", "The agent's total resident memory, as it reported.",
            [](const AgentView& a) { return a.status.rss_bytes(); });
  per_agent(
      "sovdev_agent_last_fetch_seconds",
      "Duration of the agent's last completed fetch, manifest asked to bundle verified.",
      [](const AgentView& a) { return static_cast<double>(a.status.last_fetch_ms()) / 1000.0; });
  per_agent("sovdev_agent_last_fetch_bytes", "Bytes the agent's last completed fetch received.",
            [](const AgentView& a) { return a.status.last_fetch_bytes(); });
  per_agent(
      "sovdev_agent_last_fetch_delta", "1 when the agent's last fetch came as a delta.",
      [](const AgentView& a) { return std::uint64_t{a.status.last_fetch_delta() ? 1u : 0u}; });
  per_agent("sovdev_agent_rejected_messages",
            "Messages the agent refused (bad signature, rollback ...), as it reported.",
            [](const AgentView& a) { return a.status.rejected_messages(); });
  per_agent("sovdev_agent_dropped_messages",
            "Messages the agent's MQTT client threw away with its queue full, as it reported.",
            [](const AgentView& a) { return a.status.dropped_messages(); });
  per_agent("sovdev_agent_oversize_messages",
            "Messages over their topic's size limit the agent dropped on arrival, as it reported.",
            [](const AgentView& a) { return a.status.oversize_messages(); });

  w.family("sovdev_service_healthy", Type::gauge,
           "1 when the agent reports the service healthy (or external, i.e. managed), else 0; "
           "environment as in sovdev_agent_info.");
  for (const auto& a : agents) {
    for (const auto& svc : a.status.services()) {
      w.sample({{"agent", a.agent_id}, {"environment", a.environment}, {"service", svc.service()}},
               std::uint64_t{service_up(svc.state()) ? 1u : 0u});
    }
  }
  return {};
}

Status render_bundles(Writer& w, store::Database& db) {
  store::HubBundles bundles(db);
  w.family("sovdev_bundle_latest_version", Type::gauge,
           "Newest published version of each stack per channel.");
  SOVDEV_ASSIGN(auto channels, bundles.channels());
  for (const auto& channel : channels) {
    SOVDEV_ASSIGN(auto newest, bundles.newest_per_stack(channel));
    for (const auto& b : newest) w.sample({{"channel", channel}, {"stack", b.stack}}, b.version);
  }
  return {};
}

Expected<std::string> render(store::Database& db, const LoopFigures& figures,
                             const RenderOptions& options) {
  Writer w;
  render_loop(w, figures, options);
  // One read transaction: WAL gives it a snapshot, and the serve loop's writes go on. One
  // left open by a failed scrape would fail every later BEGIN: end it first.
  if (!db.autocommit()) (void)db.exec("ROLLBACK");
  SOVDEV_TRY(db.exec("BEGIN"));
  auto read = [&]() -> Status {
    SOVDEV_TRY(render_fleet(w, db));
    SOVDEV_TRY(render_bundles(w, db));
    return render_rollouts(w, db, static_cast<std::int64_t>(std::time(nullptr)));
  }();
  // Nothing was written: ending the read transaction cannot lose anything.
  const auto ended = db.exec(read ? "COMMIT" : "ROLLBACK");
  if (!read) return std::move(read).error().context("read hub.db for metrics");
  if (!ended) return ended.error().context("read hub.db for metrics");
  return w.take();
}

}  // namespace sovdev::hub::metrics
