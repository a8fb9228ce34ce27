#include "hub/rollout/view.hpp"

#include <algorithm>

#include "common/text.hpp"

namespace sovdev::hub::rollout {
namespace {

Expected<std::vector<AgentSample>> load_samples(store::Database& db) {
  SOVDEV_ASSIGN(auto records, store::FleetStatus(db).list());
  return samples_of(records);
}

std::string gates_text(const store::RolloutRow& r) {
  std::string text = permille_text(r.success_permille) + " healthy within " +
                     duration_text(r.within_seconds) + ", abort at ";
  text += r.abort_count > 0 ? std::to_string(r.abort_count) + " failed"
                            : permille_text(r.abort_permille) + " failed";
  if (r.pause_between > 0) text += ", pause " + duration_text(r.pause_between);
  if (r.rollback_on_abort) text += ", rollback on abort";
  if (r.ignore_windows) text += ", ignores windows";
  return text;
}

}  // namespace

Expected<std::vector<RolloutView>> load_current_rollouts(store::Database& db, std::int64_t now) {
  SOVDEV_ASSIGN(auto rows, store::Rollouts(db).list());
  SOVDEV_ASSIGN(const auto agents, load_samples(db));
  std::vector<RolloutView> out;
  std::vector<std::pair<std::string, std::string>> seen;
  for (auto& row : rows) {  // newest first: the first of each stack is its current one
    const std::pair<std::string, std::string> key{row.channel, row.stack};
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    Evaluation counts = evaluate(row, agents, now);
    out.push_back({std::move(row), std::move(counts)});
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Expected<RolloutView> load_rollout(store::Database& db, std::uint64_t id, std::int64_t now) {
  SOVDEV_ASSIGN(auto row, store::Rollouts(db).find(id));
  if (!row) {
    return make_error(Errc::not_found,
                      "no rollout " + std::to_string(id) + " (sovdev-hub rollout list shows them)");
  }
  SOVDEV_ASSIGN(const auto agents, load_samples(db));
  Evaluation counts = evaluate(*row, agents, now);
  return RolloutView{std::move(*row), std::move(counts)};
}

nlohmann::json rollout_json(const RolloutView& v) {
  const store::RolloutRow& r = v.row;
  nlohmann::json waves = nlohmann::json::array();
  for (std::size_t i = 0; i < v.counts.waves.size(); ++i) {
    const WaveCounts& w = v.counts.waves[i];
    waves.push_back({{"name", w.name},
                     {"selector", r.waves[i].selector},
                     {"percent", r.waves[i].percent},
                     {"admitted", w.admitted},
                     {"members", w.members},
                     {"healthy", w.healthy},
                     {"failed", w.failed},
                     {"pending", w.pending},
                     {"offline", w.offline},
                     {"waiting_for_window", w.waiting_window}});
  }
  return {{"id", r.id},
          {"channel", r.channel},
          {"stack", r.stack},
          {"version", r.version},
          {"base_version", r.base_version},
          {"state", store::rollout_state_name(r.state)},
          {"reason", r.reason},
          {"current_wave", r.waves[std::min<std::size_t>(r.current_wave, r.waves.size() - 1)].name},
          {"wave_opened_at", utc_time(r.wave_opened_at)},
          {"success_permille", r.success_permille},
          {"within_seconds", r.within_seconds},
          {"abort_failed_count", r.abort_count},
          {"abort_failed_permille", r.abort_permille},
          {"pause_between_seconds", r.pause_between},
          {"rollback_on_abort", r.rollback_on_abort},
          {"ignore_windows", r.ignore_windows},
          {"admitted", v.counts.admitted},
          {"failed", v.counts.failed},
          {"created_at", utc_time(r.created_at)},
          {"updated_at", utc_time(r.updated_at)},
          {"waves", waves}};
}

void print_rollout_line(std::FILE* out, const store::RolloutRow& r) {
  const std::string wave =
      r.waves.empty() ? std::string("-")
                      : r.waves[std::min<std::size_t>(r.current_wave, r.waves.size() - 1)].name;
  const std::string versions = std::to_string(r.base_version) + " -> " + std::to_string(r.version);
  std::fprintf(out, "%-5llu %-24s %-16s %-10s %-14s %s\n", static_cast<unsigned long long>(r.id),
               (r.channel + "/" + r.stack).c_str(), versions.c_str(),
               store::rollout_state_name(r.state), wave.c_str(), r.reason.c_str());
}

void print_rollout(std::FILE* out, const RolloutView& v) {
  const store::RolloutRow& r = v.row;
  std::fprintf(out, "rollout %llu: %s/%s %llu -> %llu, %s", static_cast<unsigned long long>(r.id),
               r.channel.c_str(), r.stack.c_str(), static_cast<unsigned long long>(r.base_version),
               static_cast<unsigned long long>(r.version), store::rollout_state_name(r.state));
  if (!r.reason.empty()) std::fprintf(out, " (%s)", r.reason.c_str());
  std::fprintf(out, "\n  gates: %s; %u admitted, %u failed\n", gates_text(r).c_str(),
               v.counts.admitted, v.counts.failed);
  std::fprintf(out, "  %-14s %-9s %7s %7s %6s %7s %7s %7s  %s\n", "WAVE", "ADMITTED", "AGENTS",
               "HEALTHY", "FAILED", "PENDING", "OFFLINE", "WINDOW", "SELECTOR");
  for (std::size_t i = 0; i < v.counts.waves.size(); ++i) {
    const WaveCounts& w = v.counts.waves[i];
    const std::string selector = r.waves[i].selector.empty() ? "*" : r.waves[i].selector;
    std::fprintf(out, "  %-14s %-9s %7u %7u %6u %7u %7u %7u  %s (%u %%)\n", w.name.c_str(),
                 w.admitted ? "yes" : "no", w.members, w.healthy, w.failed, w.pending, w.offline,
                 w.waiting_window, selector.c_str(), r.waves[i].percent);
  }
}

}  // namespace sovdev::hub::rollout
