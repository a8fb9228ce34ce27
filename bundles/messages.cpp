#include "bundles/messages.hpp"

#include <algorithm>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"

namespace sovdev {
namespace {

Error bad(std::string_view what, const std::string& why) {
  return make_error(Errc::invalid, std::string(what) + ": " + why);
}

template <class Message>
Expected<Message> parse_capped(std::string_view bytes, size_t cap, std::string_view what) {
  if (bytes.size() > cap) {
    return make_error(Errc::too_large, std::string(what) + " of " + std::to_string(bytes.size()) +
                                           " bytes is over the " + std::to_string(cap) +
                                           "-byte limit");
  }
  Message m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return bad(what, "not a valid message");
  }
  if (m.schema() > kSchema) {
    return bad(what, "schema " + std::to_string(m.schema()) + " is newer than this program");
  }
  return m;
}

bool valid_digest(const std::string& d) {
  return d.size() == kDigestSize;
}

// What both directions check of an epoch key's name; "" when it is valid.
std::string epoch_problem(const std::string& channel, uint64_t epoch) {
  if (!valid_channel_name(channel)) return "epoch key of a bad channel name";
  if (epoch == 0) return "epoch key of epoch 0";
  return {};
}

// The chunk ranges of a request for a payload, a delta or a blob.
Expected<pb::FetchRequest> check_ranges(pb::FetchRequest req) {
  constexpr std::string_view what = "fetch request";
  if (static_cast<uint32_t>(req.chunks_size()) > kMaxRangesPerRequest) {
    return bad(what, "too many chunk ranges");
  }
  uint64_t total = 0;
  for (const auto& r : req.chunks()) {
    if (r.count() == 0) return bad(what, "empty chunk range");
    if (static_cast<uint64_t>(r.first()) + r.count() > UINT32_MAX) {
      return bad(what, "chunk range overflows");
    }
    total += r.count();
  }
  if (total > kMaxChunksPerRequest) return bad(what, "asks for more than 256 chunks at once");
  if (!req.want_manifest() && req.chunks_size() == 0) return bad(what, "asks for nothing");
  return req;
}

}  // namespace

bool valid_agent_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

bool valid_channel_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

void add_chunk(pb::FetchRequest& request, uint32_t index) {
  if (request.chunks_size() > 0) {
    pb::ChunkRange& last = *request.mutable_chunks(request.chunks_size() - 1);
    if (last.first() + last.count() == index) {
      last.set_count(last.count() + 1);
      return;
    }
  }
  pb::ChunkRange* range = request.add_chunks();
  range->set_first(index);
  range->set_count(1);
}

Expected<pb::FetchRequest> parse_fetch_request(std::string_view bytes) {
  constexpr std::string_view what = "fetch request";
  SOVDEV_ASSIGN(auto req, parse_capped<pb::FetchRequest>(bytes, kMaxFetchRequestBytes, what));
  if (!valid_agent_id(req.agent_id())) return bad(what, "bad agent id");
  if (!req.blob().empty()) {
    // An image blob, named by its wire digest (docs/design-images.md): no bundle, no epoch key.
    if (!valid_digest(req.blob())) return bad(what, "blob is not 32 bytes");
    if (!req.manifest_digest().empty()) return bad(what, "names a blob and a bundle");
    if (!req.blob_base().empty() && !valid_digest(req.blob_base())) {
      return bad(what, "blob base is not 32 bytes");
    }
    if (req.has_epoch_key() || !req.base_digest().empty()) {
      return bad(what, "asks for a blob and a bundle's delta or an epoch key");
    }
    if (req.delta() && req.blob_base().empty()) return bad(what, "delta chunks without a base");
    return check_ranges(std::move(req));
  }
  if (!req.blob_base().empty()) return bad(what, "a blob base without a blob");
  if (!valid_digest(req.manifest_digest())) return bad(what, "manifest digest is not 32 bytes");
  if (!req.base_digest().empty() && !valid_digest(req.base_digest())) {
    return bad(what, "base digest is not 32 bytes");
  }
  if (req.has_epoch_key()) {
    if (auto problem = epoch_problem(req.epoch_key().channel(), req.epoch_key().epoch());
        !problem.empty()) {
      return bad(what, problem);
    }
    if (req.want_manifest() || req.chunks_size() > 0 || req.delta() || !req.base_digest().empty()) {
      return bad(what, "asks for an epoch key and more");
    }
    return req;
  }
  if (req.delta() && req.base_digest().empty()) return bad(what, "delta chunks without a base");
  return check_ranges(std::move(req));
}

Expected<pb::FetchResponse> parse_fetch_response(std::string_view bytes) {
  constexpr std::string_view what = "fetch response";
  SOVDEV_ASSIGN(auto resp, parse_capped<pb::FetchResponse>(bytes, kMaxFetchResponseBytes, what));
  if (!resp.blob().empty()) {
    if (!valid_digest(resp.blob())) return bad(what, "blob is not 32 bytes");
    if (!resp.manifest_digest().empty()) return bad(what, "names a blob and a bundle");
    if (resp.has_epoch_key() || resp.body_case() == pb::FetchResponse::kManifest) {
      return bad(what, "a blob's answer carries a bundle's manifest or an epoch key");
    }
    if (!resp.blob_manifest().empty() && resp.body_case() != pb::FetchResponse::BODY_NOT_SET) {
      return bad(what, "a blob manifest and another body");
    }
    if (resp.blob_manifest().empty() && resp.body_case() == pb::FetchResponse::BODY_NOT_SET) {
      return bad(what, "carries nothing");
    }
  } else if (!resp.blob_manifest().empty()) {
    return bad(what, "a blob manifest without its blob");
  } else if (!valid_digest(resp.manifest_digest())) {
    return bad(what, "manifest digest is not 32 bytes");
  }
  switch (resp.body_case()) {
    case pb::FetchResponse::kManifest:
    case pb::FetchResponse::kDeltaManifest: break;
    case pb::FetchResponse::kChunk:
      if (resp.chunk().data().empty() || resp.chunk().data().size() > kMaxChunkSize) {
        return bad(what, "chunk size out of range");
      }
      break;
    case pb::FetchResponse::kError:
      if (resp.error().size() > 1024) return bad(what, "error text too long");
      break;
    case pb::FetchResponse::BODY_NOT_SET:
      if (!resp.has_epoch_key() && resp.blob_manifest().empty())
        return bad(what, "carries nothing");
      break;
  }
  if (resp.has_epoch_key()) {
    const pb::SealedEpochKey& key = resp.epoch_key();
    if (auto problem = epoch_problem(key.channel(), key.epoch()); !problem.empty()) {
      return bad(what, problem);
    }
    if (key.sealed().size() != kSealedEpochKeyBytes) {
      return bad(what,
                 "sealed epoch key is not " + std::to_string(kSealedEpochKeyBytes) + " bytes");
    }
  }
  if (resp.delta_data().size() > kMaxInlineDelta) return bad(what, "inline delta too large");
  if (resp.delta_refusal().size() > 1024) return bad(what, "delta refusal text too long");
  return resp;
}

bool answers_delta(const pb::FetchResponse& r) {
  return r.has_delta_offer() || r.delta_retry_ms() > 0 || !r.delta_refusal().empty();
}

Expected<pb::AgentStatus> parse_agent_status(std::string_view bytes) {
  constexpr std::string_view what = "agent status";
  SOVDEV_ASSIGN(auto st, parse_capped<pb::AgentStatus>(bytes, kMaxStatusBytes, what));
  if (!valid_agent_id(st.agent_id())) return bad(what, "bad agent id");
  static constexpr std::string_view states[] = {"idle",     "fetching", "verifying", "applying",
                                                "checking", "healthy",  "degraded",  "rolled_back",
                                                "offline",  "failed"};
  if (std::find(std::begin(states), std::end(states), st.state()) == std::end(states)) {
    return bad(what, "unknown state '" + st.state().substr(0, 32) + "'");
  }
  if (st.progress_permille() > 1000) return bad(what, "progress over 100 %");
  if (st.services_size() > 64) return bad(what, "too many services");
  if (!st.applied_digest().empty() && !valid_digest(st.applied_digest())) {
    return bad(what, "applied digest is not 32 bytes");
  }
  return st;
}

}  // namespace sovdev
