// Checked parsing of the sync protocol's messages. Anyone who can publish on the broker can
// send these, so each is size-capped and validated before any field is used.
#pragma once

#include <string>
#include <string_view>

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

Expected<pb::FetchRequest> parse_fetch_request(std::string_view bytes);
// Asks for chunk `index` too, extending the request's last range when `index` follows it: the
// lowest missing chunks, added in order, make as few ranges as they can.
void add_chunk(pb::FetchRequest& request, uint32_t index);
Expected<pb::FetchResponse> parse_fetch_response(std::string_view bytes);
// Whether a manifest's answer also says what the hub has of a delta (the one-answer exchange
// of FetchRequest.inline_delta_max): an offer, a wait, or a refusal. Hubs that predate it
// answer the manifest alone, the delta in a second message.
bool answers_delta(const pb::FetchResponse& response);
Expected<pb::AgentStatus> parse_agent_status(std::string_view bytes);

}  // namespace sovdev
