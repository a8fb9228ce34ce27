#include "hub/images/serve_blobs.hpp"

#include <algorithm>

#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"
#include "bundles/messages.hpp"
#include "platform/store/hub_images.hpp"

namespace sovdev::hub::images {
namespace {

Error blob_request_error(const std::string& why) {
  return make_error(Errc::invalid, "blob fetch request: " + why);
}

pb::FetchResponse blob_response(const pb::FetchRequest& req) {
  pb::FetchResponse resp;
  resp.set_schema(1);
  resp.set_request_id(req.request_id());
  resp.set_blob(req.blob());
  return resp;
}

}  // namespace

Expected<pb::FetchRequest> parse_blob_request(std::string_view bytes) {
  if (bytes.size() > kMaxFetchRequestBytes) {
    return make_error(Errc::too_large, "blob fetch request of " + std::to_string(bytes.size()) +
                                           " bytes is over the limit");
  }
  pb::FetchRequest req;
  if (!req.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return blob_request_error("not a valid message");
  }
  if (req.schema() > kSchema) return blob_request_error("schema newer than this program");
  if (!valid_agent_id(req.agent_id())) return blob_request_error("bad agent id");
  if (req.blob().size() != kDigestSize) return blob_request_error("blob is not 32 bytes");
  if (!req.manifest_digest().empty()) return blob_request_error("names a bundle too");
  if (!req.blob_base().empty() && req.blob_base().size() != kDigestSize) {
    return blob_request_error("blob base is not 32 bytes");
  }
  if (req.has_epoch_key() || req.delta() || !req.base_digest().empty()) {
    return blob_request_error("asks for a bundle's delta or an epoch key too");
  }
  if (static_cast<uint32_t>(req.chunks_size()) > kMaxRangesPerRequest) {
    return blob_request_error("too many chunk ranges");
  }
  uint64_t total = 0;
  for (const auto& r : req.chunks()) {
    if (r.count() == 0) return blob_request_error("empty chunk range");
    if (uint64_t{r.first()} + r.count() > UINT32_MAX) {
      return blob_request_error("chunk range overflows");
    }
    total += r.count();
  }
  if (total > kMaxChunksPerRequest) return blob_request_error("asks for more than 256 chunks");
  if (!req.want_manifest() && req.chunks_size() == 0) return blob_request_error("asks for nothing");
  return req;
}

Status answer_blob(const BlobServeContext& ctx, const std::string& agent_id,
                   const pb::FetchRequest& req) {
  store::HubImages images(ctx.db);
  SOVDEV_ASSIGN(auto blob, images.find_by_wire(req.blob(), req.want_manifest()));
  if (!blob) {
    ctx.counts.unknown++;
    pb::FetchResponse resp = blob_response(req);
    resp.set_error("unknown blob " + short_hex(req.blob()));
    return ctx.send(resp);
  }
  // Deltas of layers (req.blob_base(): the layer the agent holds at the same place) are the
  // next step of #22; until then every blob is answered in full, which an agent asking for a
  // delta must accept as a hub without deltas' answer.
  const std::string topic = blob_topic(ctx.prefix, blob->wire_digest);
  if (req.want_manifest()) {
    pb::FetchResponse resp = blob_response(req);
    resp.set_blob_manifest(std::move(blob->blob_manifest));
    if (req.broadcast()) {
      // The agent listened on the blob topic before it asked: whatever is numbered after this
      // position reaches it.
      const auto& stream = ctx.streams.get(topic, blob->chunk_count, ctx.now);
      resp.set_broadcast_stream(stream.id);
      resp.set_broadcast_seq(stream.last_seq);
    }
    SOVDEV_TRY(ctx.send(resp));
    ctx.counts.manifests_sent++;
  }
  if (req.chunks_size() == 0) return {};
  const bool last_chunk = std::any_of(req.chunks().begin(), req.chunks().end(), [&](const auto& r) {
    return uint64_t{r.first()} + r.count() >= blob->chunk_count;
  });
  // A full transfer waits for a slot: no answer, the agent asks again after its timeout.
  if (!ctx.transfers.request(kImageSlots, agent_id, ctx.steady, last_chunk)) return {};
  BroadcastStream* stream =
      req.broadcast() ? &ctx.streams.get(topic, blob->chunk_count, ctx.now) : nullptr;
  std::string data;
  for (const auto& range : req.chunks()) {
    for (uint32_t i = range.first(); i < range.first() + range.count(); i++) {
      if (stream && stream->on_its_way(i, req.broadcast_stream(), req.broadcast_seen())) continue;
      pb::FetchResponse resp = blob_response(req);
      if (i >= blob->chunk_count) {
        resp.set_error("no chunk " + std::to_string(i));
        return ctx.send(resp);
      }
      SOVDEV_TRY(images.read_chunk(blob->digest, i, data));
      const Verdict verdict =
          ctx.limits.chunk(agent_id, blob->wire_digest, i, blob->chunk_count, data.size());
      // The agent's byte budget is spent: the rest of the request waits too.
      if (verdict == Verdict::throttled) return {};
      if (verdict == Verdict::refused) continue;
      resp.mutable_chunk()->set_index(i);
      resp.mutable_chunk()->set_data(std::move(data));
      ctx.counts.chunks_sent++;
      if (stream && !stream->sent(i)) {
        // Every listener takes it; the request id means nothing to the others.
        resp.set_request_id(0);
        SOVDEV_TRY(ctx.broadcast(*stream, resp));
        ctx.counts.chunks_broadcast++;
      } else {
        SOVDEV_TRY(ctx.send(resp));
      }
    }
  }
  return {};
}

}  // namespace sovdev::hub::images
