// The hub's Prometheus metrics: what the serve loop counts (ServeStats, the time it takes to
// answer a fetch request) and what hub.db holds (the fleet as `sovdev-hub status` shows it:
// environment, stack and version of the bundle the hub published under the digest each agent
// reports, last seen by the hub's clock; the newest bundle of each stack). Names are fixed: the
// Grafana dashboard is written against them.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "hub/metrics_text.hpp"
#include "hub/serve.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::hub::metrics {

// What the serve loop knows, as one value the HTTP thread can copy.
struct LoopFigures {
  ServeStats stats;
  Histogram request_duration;  // seconds per handled fetch request

  LoopFigures();
};

// The serve loop's figures, shared with the thread that answers scrapes. The loop is the only
// writer; a scrape copies them under the lock and renders without it, so a slow scraper never
// holds up serving.
class LiveFigures {
 public:
  void update(const ServeStats& stats);
  void observe_request(std::chrono::steady_clock::duration took);
  LoopFigures snapshot() const;

 private:
  mutable std::mutex mutex_;
  LoopFigures figures_;
};

struct RenderOptions {
  std::string_view version;  // sovdev_hub_build_info{version}
};

// The whole /metrics page. `db` is a connection of the scraping thread's own (SQLite
// connections are not shared between threads); all of hub.db is read in one transaction, so
// the fleet and the bundles come from one consistent moment.
[[nodiscard]] Expected<std::string> render(store::Database& db, const LoopFigures& figures,
                                           const RenderOptions& options);

// The parts of render(), for tests.
void render_loop(Writer& w, const LoopFigures& figures, const RenderOptions& options);
[[nodiscard]] Status render_fleet(Writer& w, store::Database& db);
[[nodiscard]] Status render_bundles(Writer& w, store::Database& db);
// Each stack's newest rollout (metrics_rollouts.cpp): its state, and its agents per wave and
// phase as the gates count them at `now`.
[[nodiscard]] Status render_rollouts(Writer& w, store::Database& db, std::int64_t now);

}  // namespace sovdev::hub::metrics
