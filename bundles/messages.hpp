// Checked parsing of the sync protocol's messages. Anyone who can publish on the broker can
// send these, so each is size-capped and validated before any field is used.
#pragma once

#include <string>
#include <string_view>

#include "bundles/seal.hpp"
#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev {

inline constexpr size_t kMaxFetchRequestBytes = 16 * 1024;
inline constexpr size_t kMaxStatusBytes = 64 * 1024;
// A chunk (≤ 1 MiB) or a signed manifest (≤ 1 MiB) plus framing.
inline constexpr size_t kMaxFetchResponseBytes = 1024 * 1024 + 4096;
inline constexpr uint32_t kMaxRangesPerRequest = 64;
inline constexpr uint32_t kMaxChunksPerRequest = 256;

// Agent ids appear in MQTT topics and ACL patterns: no '/', '+', '#' or spaces.
bool valid_agent_id(std::string_view id);
// A channel as manifests name it (bundles/manifest_rules.cpp): 1-63 of [a-z0-9._-].
bool valid_channel_name(std::string_view channel);

// An epoch key sealed to one agent: crypto_box_seal's overhead and the key.
inline constexpr size_t kSealedEpochKeyBytes = seal::kBoxOverhead + seal::kKeySize;

// A request with epoch_key set asks for that alone (a valid channel, an epoch above 0); the
// manifest digest names the bundle that needs it, for the answer's routing.
Expected<pb::FetchRequest> parse_fetch_request(std::string_view bytes);
// Asks for chunk `index` too, extending the request's last range when `index` follows it: the
// lowest missing chunks, added in order, make as few ranges as they can.
void add_chunk(pb::FetchRequest& request, uint32_t index);
// An answer's epoch_key has a valid channel, an epoch above 0 and exactly
// kSealedEpochKeyBytes sealed; it may come without a body.
Expected<pb::FetchResponse> parse_fetch_response(std::string_view bytes);
// Whether a manifest's answer also says what the hub has of a delta (the one-answer exchange
// of FetchRequest.inline_delta_max): an offer, a wait, or a refusal. Hubs that predate it
// answer the manifest alone, the delta in a second message.
bool answers_delta(const pb::FetchResponse& response);
Expected<pb::AgentStatus> parse_agent_status(std::string_view bytes);

}  // namespace sovdev
