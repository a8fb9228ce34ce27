// The serve loop's answers to image blob requests (docs/design-images.md): a FetchRequest with
// `blob` set names a blob by its wire digest (the SHA-256 of its BlobManifest, which the signed
// bundle manifest lists). want_manifest gets the BlobManifest's bytes; chunk ranges get the
// wire form's chunks from hub.db, with everything a bundle payload's chunks have: the agent's
// limits, a transfer slot (under kImageSlots: the hub does not know which stack a blob is
// for), the broadcast stream on <prefix>/blob/<wire digest hex> and its positions.
//
// Driven by hub::Server::on_fetch, which lends what it shares with bundle answers through
// BlobServeContext. Runs on the serve loop's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "hub/broadcast.hpp"
#include "hub/limits.hpp"
#include "hub/transfer_slots.hpp"
#include "platform/store/sqlite.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub::images {

// The transfer-slot key every blob transfer counts under.
inline constexpr const char* kImageSlots = "images";

struct BlobServeCounts {
  uint64_t manifests_sent = 0;  // BlobManifests answered
  uint64_t chunks_sent = 0;     // wire chunks, on the agent's topic or broadcast
  uint64_t chunks_broadcast = 0;
  uint64_t unknown = 0;  // requests for a wire digest hub.db does not hold
};

// What the serve loop lends: its database, limits, slots and streams, and how it sends.
struct BlobServeContext {
  store::Database& db;
  AgentLimits& limits;
  TransferSlots& transfers;
  BroadcastStreams& streams;
  const std::string& prefix;
  int64_t now;                                   // the streams' clock (unix seconds)
  std::chrono::steady_clock::time_point steady;  // the slots' clock
  // To the asking agent's data topic.
  std::function<Status(const pb::FetchResponse&)> send;
  // As the stream's next number on its blob topic.
  std::function<Status(BroadcastStream&, pb::FetchResponse&)> broadcast;
  BlobServeCounts& counts;
};

// A FetchRequest for a blob, checked as bundles/messages.cpp checks the others: `blob` is 32
// bytes, manifest_digest empty, blob_base empty or 32 bytes, no bundle delta or epoch key, the
// chunk ranges within the same bounds. Errc::invalid otherwise.
[[nodiscard]] Expected<pb::FetchRequest> parse_blob_request(std::string_view bytes);

// Answers one blob request. Errors are those of hub.db; what the agent got wrong is answered
// with an error body ("unknown blob <hex>", "no chunk N").
[[nodiscard]] Status answer_blob(const BlobServeContext& context, const std::string& agent_id,
                                 const pb::FetchRequest& request);

}  // namespace sovdev::hub::images
