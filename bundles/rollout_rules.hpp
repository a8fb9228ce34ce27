// Who a rollout admits (docs/design-rollouts.md), computed the same way by the hub (counting a
// wave's agents) and by each agent (deciding whether it may run the rollout's version):
//
// - A selector matches an agent's labels and its id, with the syntax of Kubernetes label
//   selectors: requirements separated by commas, all of which must hold.
//     site=lab   site==lab   site!=lab   region in (eu,us)   region notin (eu)   gpu   !gpu
//     id=edge-07   id in (edge-07,edge-08)      ("" or "*": every agent)
//   The key `id` is the agent's id; a label of that name is refused in the agent's config.
// - A percentage takes a stable share of the matching agents: an agent is in it when the first
//   4 bytes of SHA-256("sovdev-rollout-share\0" rollout id "\0" agent id), read big-endian,
//   fall under percent/100 of 2^32. The share of 10 % is inside that of 50 % for the same
//   rollout, so growing a wave only adds agents; another rollout draws other agents.
// Nothing here trusts its input: the catalog that carries a selector is signed by the online
// role, but its parser is the same one that reads an operator's command line.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev::rollout {

using Labels = std::map<std::string, std::string, std::less<>>;

inline constexpr size_t kMaxSelectorBytes = 1024;
inline constexpr size_t kMaxRequirements = 32;
inline constexpr size_t kMaxValuesPerRequirement = 64;
inline constexpr size_t kMaxLabels = 32;
inline constexpr size_t kMaxLabelBytes = 63;  // a key or a value
// The selector key that names the agent's id rather than a label.
inline constexpr std::string_view kIdKey = "id";

// A label key: 1-63 of [A-Za-z0-9._/-], starting and ending with a letter or digit.
bool valid_label_key(std::string_view key);
// A label value: 0-63 of [A-Za-z0-9._-], starting and ending with a letter or digit when
// not empty. Agent ids (bundles/messages.hpp) are valid values.
bool valid_label_value(std::string_view value);
// An agent's labels as its config gives them: at most kMaxLabels, valid keys and values, and
// no label named `id`.
Status check_labels(const Labels& labels);

struct Requirement {
  enum class Op { equals, not_equals, in, not_in, exists, not_exists };
  std::string key;
  Op op = Op::equals;
  std::vector<std::string> values;  // one for equals/not_equals, none for exists/not_exists
};

class Selector {
 public:
  // Every agent.
  Selector() = default;
  bool matches(const Labels& labels, std::string_view agent_id) const;
  bool matches_everyone() const { return all_.empty(); }
  // The canonical text: requirements in the order given, single spaces.
  std::string text() const;

 private:
  friend Expected<Selector> parse_selector(std::string_view text);
  std::vector<Requirement> all_;
};

Expected<Selector> parse_selector(std::string_view text);

// Whether an agent falls into the `percent` share of a rollout (see the header comment).
// percent 0 admits none, 100 (or more) all.
bool in_share(uint64_t rollout_id, std::string_view agent_id, uint32_t percent);

// Whether a wave admits the agent: its selector matches and the agent is in its share. A
// selector that does not parse admits nobody.
bool wave_admits(uint64_t rollout_id, const pb::RolloutWave& wave, const Labels& labels,
                 std::string_view agent_id);

// Whether the agent may start the rollout's version now: the rollout is running and one of its
// admitted waves admits the agent.
bool admits(const pb::CatalogRollout& rollout, const Labels& labels, std::string_view agent_id);

// A wave as the command line gives it: NAME:SELECTOR[:PERCENT], e.g. "canary:site=lab:10" or
// "eu:region in (eu,us)" (a selector may hold commas and spaces, not colons; PERCENT may end
// in %).
Expected<pb::RolloutWave> parse_wave(std::string_view text);

}  // namespace sovdev::rollout
