// The hub's rollout rows (docs/design-rollouts.md): each staged rollout with its waves, gates and
// where it stands. Written by `sovdev-hub rollout` (start, pause, resume, abort) and by `serve`
// as its gates open waves, complete or abort; read by the catalog, `status` and /metrics.
// Holds, windows and revocation lists, the other inputs of a catalog, are in catalog_inputs.hpp.
//
// Plain rows, no protobuf: selectors and waves are kept as the operator gave them (checked by
// bundles/rollout_rules before they get here).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

enum class RolloutState { running, paused, aborted, completed };
const char* rollout_state_name(RolloutState state);
[[nodiscard]] Expected<RolloutState> parse_rollout_state(std::string_view text);

struct WaveRow {
  std::string name;
  std::string selector;
  std::uint32_t percent = 100;
};

struct RolloutRow {
  std::uint64_t id = 0;  // set by start()
  std::string channel;
  std::string stack;
  std::uint64_t version = 0;
  std::string digest;  // raw 32 bytes
  std::uint64_t base_version = 0;
  std::string base_digest;
  std::vector<WaveRow> waves;
  std::uint32_t success_permille = 1000;
  std::int64_t within_seconds = 0;
  // Exactly one is set: failures that abort, as a count or per mille of the admitted agents.
  std::uint32_t abort_count = 0;
  std::uint32_t abort_permille = 0;
  std::int64_t pause_between = 0;
  bool rollback_on_abort = false;
  bool ignore_windows = false;
  RolloutState state = RolloutState::running;
  std::uint32_t current_wave = 0;  // the newest wave opened; waves 0..current_wave are admitted
  std::int64_t wave_opened_at = 0;
  // When the current wave's gate was first seen met: the next wave opens pause_between after.
  std::optional<std::int64_t> gate_met_at;
  // While paused: since when, so `resume` gives the wave back the time the pause took.
  std::optional<std::int64_t> paused_at;
  std::string reason;  // why it stopped (aborted) or who paused it
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

class Rollouts {
 public:
  explicit Rollouts(Database& db) : db_(db) {}

  // Inserts a running rollout with its waves; returns its id. Errc::conflict when the channel's
  // stack has a running or paused rollout already.
  [[nodiscard]] Expected<std::uint64_t> insert(const RolloutRow& row);
  [[nodiscard]] Expected<std::optional<RolloutRow>> find(std::uint64_t id);
  // Every rollout, newest first.
  [[nodiscard]] Expected<std::vector<RolloutRow>> list();
  // Only running ones, oldest first: what serve's gates look at.
  [[nodiscard]] Expected<std::vector<RolloutRow>> running();
  // The newest rollout of a channel's stack, whatever its state.
  [[nodiscard]] Expected<std::optional<RolloutRow>> newest(std::string_view channel,
                                                           std::string_view stack);
  // Writes where the rollout stands (state, wave, timers, reason, updated_at); the definition
  // (version, waves, gates) never changes after insert. Errc::not_found for an unknown id.
  [[nodiscard]] Status update_progress(const RolloutRow& row);

 private:
  [[nodiscard]] Expected<std::vector<RolloutRow>> select(
      const std::string& where, const std::function<Status(Statement&)>& bind = {});
  Database& db_;
};

}  // namespace sovdev::store
