#include "hub/serve.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/messages.hpp"
#include "common/text.hpp"
#include "hub/catalog.hpp"
#include "hub/secrets/fleet_keys.hpp"

namespace sovdev::hub {
namespace {

// Requests held for a delta being made: beyond this many, agents are told to ask again.
constexpr size_t kMaxHeldAnswers = 1024;

// "<prefix>/<kind>/<id>" → id, or "" when the topic is not of that kind.
std::string id_from_topic(const std::string& topic, const std::string& prefix,
                          const std::string& kind) {
  const std::string head = prefix + "/" + kind + "/";
  if (topic.compare(0, head.size(), head) != 0) return {};
  std::string id = topic.substr(head.size());
  return valid_agent_id(id) ? id : std::string();
}

}  // namespace

Server::Server(store::Database& db, mqtt::Client& client, ServeOptions options, Clock now)
    : db_(db),
      client_(client),
      options_(std::move(options)),
      now_(std::move(now)),
      deltas_(delta_from_database(db.path()), options_.keys, options_.deltas, options_.steady),
      limits_(options_.limits, options_.steady),
      transfers_(options_.transfers),
      rollouts_(db) {}

Status Server::start() {
  SOVDEV_TRY(client_.subscribe("$share/" + options_.group + "/" + options_.prefix + "/fetch/+", 1));
  SOVDEV_TRY(client_.subscribe(options_.prefix + "/status/+", 1));
  store::HubBundles bundles(db_);
  store::HubCatalogs catalogs(db_);
  SOVDEV_ASSIGN(auto channels, bundles.channels());
  for (const auto& channel : channels) {
    SOVDEV_ASSIGN(auto catalog, catalogs.catalog(channel));
    if (!catalog) {
      SOVDEV_ASSIGN(auto fresh,
                    refresh_catalog(db_, channel, options_.keys, now_(), options_.catalog_ttl));
      catalog = fresh;
    }
    SOVDEV_TRY(publish_catalog(*catalog));
  }
  return tick();
}

Status Server::tick() {
  // Requests lost to a full queue cost their agents a whole request_timeout: say so.
  if (const uint64_t dropped = client_.stats().dropped; dropped > dropped_) {
    spdlog::warn("{} incoming messages dropped (the queue was full); their agents ask again",
                 dropped - dropped_);
    dropped_ = dropped;
  }
  const int64_t now = now_();
  SOVDEV_TRY(sign_changed_catalogs(now));
  store::HubBundles bundles(db_);
  store::HubCatalogs catalogs(db_);
  SOVDEV_ASSIGN(auto channels, bundles.channels());
  for (const auto& channel : channels) {
    SOVDEV_ASSIGN(auto catalog, catalogs.catalog(channel));
    if (catalog && catalog->expires_at - now > options_.catalog_ttl / 2) continue;
    auto fresh = refresh_catalog(db_, channel, options_.keys, now, options_.catalog_ttl);
    // Another replica may have renewed it a moment ago: its serial wins, ours is dropped.
    if (!fresh) {
      spdlog::warn("renew catalog {}: {}", channel, fresh.error().message);
      continue;
    }
    spdlog::info("catalog {} renewed: serial {}", channel, fresh->serial);
    SOVDEV_TRY(publish_catalog(*fresh));
  }
  return {};
}

Status Server::sign_changed_catalogs(int64_t now) {
  SOVDEV_ASSIGN(const auto changed, rollouts_.tick(now));
  for (const auto& channel : changed) {
    auto fresh = refresh_catalog(db_, channel, options_.keys, now, options_.catalog_ttl);
    if (!fresh) {
      // Tried again next tick; the agents keep the catalog they have meanwhile.
      spdlog::warn("sign catalog {} after a rollout, hold, window or revocation change: {}",
                   channel, fresh.error().message);
      continue;
    }
    rollouts_.signed_at(channel, rollouts_.pending_count(channel));
    spdlog::info("catalog {} signed for a rollout, hold, window or revocation change: serial {}",
                 channel, fresh->serial);
    SOVDEV_TRY(publish_catalog(*fresh));
  }
  return {};
}

Status Server::publish_catalog(const store::HubCatalog& catalog) {
  mqtt::Message m;
  m.topic = catalog_topic(options_.prefix, catalog.channel);
  m.payload = catalog.envelope;
  m.retained = true;
  return client_.publish(m);
}

Status Server::handle(const mqtt::Event& event) {
  if (event.kind == mqtt::Event::Kind::connected) {
    spdlog::info("connected to the broker");
    // A broker that restarted without persistence lost the retained catalogs: give them back.
    store::HubCatalogs catalogs(db_);
    store::HubBundles bundles(db_);
    SOVDEV_ASSIGN(auto channels, bundles.channels());
    for (const auto& channel : channels) {
      SOVDEV_ASSIGN(auto catalog, catalogs.catalog(channel));
      if (catalog) SOVDEV_TRY(publish_catalog(*catalog));
    }
    return {};
  }
  if (event.kind == mqtt::Event::Kind::connection_lost) {
    spdlog::warn("connection to the broker lost: {}", event.reason);
    return {};
  }
  const auto& m = event.message;
  if (auto id = id_from_topic(m.topic, options_.prefix, "fetch"); !id.empty()) {
    return on_fetch(id, m);
  }
  if (auto id = id_from_topic(m.topic, options_.prefix, "status"); !id.empty()) {
    return on_status(id, m);
  }
  reject("message on unexpected topic " + m.topic.substr(0, 128));
  return {};
}

void Server::reject(const std::string& what) {
  stats_.rejected++;
  spdlog::warn("rejected: {}", escape_control(what));
}

Status Server::send(const std::string& agent_id, const std::string& correlation,
                    const pb::FetchResponse& response) {
  mqtt::Message m;
  // The reply goes to the agent's own data topic, never to a topic named in the request:
  // the ACL lets only that agent read it.
  m.topic = options_.prefix + "/agent/" + agent_id + "/data";
  m.payload = response.SerializeAsString();
  m.correlation_data = correlation;
  if (response.body_case() == pb::FetchResponse::kChunk) m.qos = 0;
  auto sent = client_.publish(m);
  if (!sent) {
    // The agent asks again after its timeout; a full outgoing buffer must not stop the hub.
    stats_.send_failures++;
    return {};
  }
  stats_.bytes_sent += m.payload.size();
  return {};
}

Status Server::broadcast(BroadcastStream& stream, pb::FetchResponse& response) {
  response.set_broadcast_stream(stream.id);
  response.set_broadcast_seq(stream.last_seq + 1);
  mqtt::Message m;
  m.topic = stream.topic;
  m.payload = response.SerializeAsString();
  m.qos = 0;
  if (!client_.publish(m)) {
    // Not numbered: the agents that asked see no gap and ask again after their timeout.
    stats_.send_failures++;
    return {};
  }
  stream.last_seq++;
  const uint32_t index = response.chunk().index();
  if (index < stream.sent_seq.size()) stream.sent_seq[index] = stream.last_seq;
  stats_.chunks_broadcast++;
  stats_.bytes_sent += m.payload.size();
  return {};
}

Status Server::on_fetch(const std::string& agent_id, const mqtt::Message& message) {
  stats_.requests++;
  // Before anything else is spent on it. Dropped without an answer: an answer is what an
  // agent asking too often wants, and it asks again after its timeout.
  if (limits_.request(agent_id) != Verdict::ok) return {};
  auto req = parse_fetch_request(message.payload);
  // A blob request names no bundle: its own checks decide (hub/images/serve_blobs.hpp).
  if (!req || !req->blob().empty()) {
    auto blob = images::parse_blob_request(message.payload);
    if (blob || req) req = std::move(blob);
  }
  if (!req) {
    reject("fetch from " + agent_id + ": " + req.error().message);
    return {};
  }
  if (req->agent_id() != agent_id) {
    reject("fetch on " + agent_id + "'s topic names agent " + req->agent_id());
    return {};
  }
  if (req->has_epoch_key()) return answer_epoch_key(agent_id, message.correlation_data, *req);
  if (!req->blob().empty()) return answer_blob(agent_id, message.correlation_data, *req);
  store::HubBundles bundles(db_);
  // Most requests ask for chunks alone: they need the bundle's counts, not its manifest.
  const bool needs_manifest = req->want_manifest() || req->delta() || !req->base_digest().empty();
  SOVDEV_ASSIGN(auto bundle, needs_manifest
                                 ? bundles.find(req->manifest_digest())
                                 : bundles.find_without_envelope(req->manifest_digest()));
  pb::FetchResponse resp;
  resp.set_schema(1);
  resp.set_request_id(req->request_id());
  resp.set_manifest_digest(req->manifest_digest());
  if (!bundle) {
    resp.set_error("unknown bundle " + short_hex(req->manifest_digest()));
    return send(agent_id, message.correlation_data, resp);
  }
  if (req->want_manifest() && req->inline_delta_max() > 0 && !req->base_digest().empty()) {
    // Only the first ask is held: one asking again (offer only) waits a request timeout for
    // its answer, and is answered at once.
    SOVDEV_TRY(answer_with_delta(agent_id, message.correlation_data, *req, *bundle, resp,
                                 !req->delta_offer_only()));
  } else if (req->want_manifest()) {
    pb::Signed* env = resp.mutable_manifest();
    if (!env->ParseFromString(bundle->envelope))
      return make_error(Errc::store, "stored manifest unreadable");
    if (req->broadcast()) {
      // The agent listened on the payload's blob topic before it asked: whatever is numbered
      // after this position reaches it.
      const auto& stream =
          streams_.get(blob_topic(options_.prefix, bundle->digest), bundle->chunk_count, now_());
      resp.set_broadcast_stream(stream.id);
      resp.set_broadcast_seq(stream.last_seq);
    }
    SOVDEV_TRY(send(agent_id, message.correlation_data, resp));
    stats_.manifests_sent++;
    if (!req->base_digest().empty()) {
      pb::FetchResponse delta_resp = resp;
      delta_resp.clear_broadcast_stream();
      delta_resp.clear_broadcast_seq();
      SOVDEV_ASSIGN(const DeltaOffer offer,
                    deltas_.offer(db_, *bundle, req->base_digest(), agent_id));
      if (offer.entry) {
        if (!delta_resp.mutable_delta_manifest()->ParseFromString(offer.entry->envelope)) {
          return make_error(Errc::internal, "delta manifest unreadable");
        }
      } else if (offer.preparing) {
        // Made by the worker meanwhile; the loop goes on serving everybody else. The error body
        // makes agents that predate delta_retry_ms fetch in full, as "no delta" always did.
        delta_resp.set_error("delta being prepared: ask again in " +
                             std::to_string(options_.delta_retry_ms) + " ms");
        delta_resp.set_delta_retry_ms(options_.delta_retry_ms);
      } else {
        // No delta is on offer (no such base, a delta would not be smaller, the hub is busy
        // with other deltas): full transfer.
        delta_resp.set_error("no delta: " + offer.refusal.message);
      }
      SOVDEV_TRY(send(agent_id, message.correlation_data, delta_resp));
    }
  }
  if (req->chunks_size() == 0) return {};
  // Agents that set the flag listen on the object's blob topic: answer there, once for all.
  BroadcastStream* stream = nullptr;
  const DeltaEntry* delta = nullptr;
  if (req->delta()) {
    SOVDEV_ASSIGN(const DeltaOffer offer,
                  deltas_.offer(db_, *bundle, req->base_digest(), agent_id));
    if (offer.preparing) {
      // Asked for chunks of a delta this hub no longer holds (a restart, another replica took
      // over) and is making again: no answer, so the agent asks again after its timeout and
      // finds it made, rather than dropping the delta it has half collected.
      return {};
    }
    if (!offer.entry) {
      pb::FetchResponse refused;
      refused.set_schema(1);
      refused.set_request_id(req->request_id());
      refused.set_manifest_digest(req->manifest_digest());
      refused.set_error("no delta: " + offer.refusal.message);
      return send(agent_id, message.correlation_data, refused);
    }
    delta = offer.entry;
  }
  // A full transfer waits for its stack's slot (a delta is small and never waits): no answer,
  // the agent asks again after its timeout.
  if (!delta) {
    const bool last_chunk = std::any_of(
        req->chunks().begin(), req->chunks().end(),
        [&](const auto& r) { return uint64_t{r.first()} + r.count() >= bundle->chunk_count; });
    const bool was_waiting = transfers_.place(bundle->stack, agent_id) > 0;
    if (!transfers_.request(bundle->stack, agent_id, options_.steady(), last_chunk)) {
      if (const size_t place = transfers_.place(bundle->stack, agent_id); !was_waiting && place) {
        spdlog::info("{} waits for a transfer slot of {} (place {}, {} served at once)", agent_id,
                     bundle->stack, place, options_.transfers.per_stack);
      }
      return {};
    }
  }
  if (req->broadcast()) {
    stream = delta ? &streams_.get(blob_topic(options_.prefix, delta->manifest.delta_sha256()),
                                   delta_chunk_count(delta->manifest), now_())
                   : &streams_.get(blob_topic(options_.prefix, bundle->digest), bundle->chunk_count,
                                   now_());
  }
  const std::string& object = delta ? delta->manifest.delta_sha256() : bundle->digest;
  const uint32_t object_chunks = delta ? delta_chunk_count(delta->manifest) : bundle->chunk_count;
  std::string data;
  bool spent = false;  // the agent's byte budget ran out: the rest of the request waits too
  for (const auto& range : req->chunks()) {
    if (spent) break;
    for (uint32_t i = range.first(); i < range.first() + range.count(); i++) {
      if (stream && stream->on_its_way(i, req->broadcast_stream(), req->broadcast_seen())) {
        stats_.chunks_on_their_way++;
        continue;
      }
      pb::FetchResponse chunk_resp;
      chunk_resp.set_schema(1);
      chunk_resp.set_request_id(req->request_id());
      chunk_resp.set_manifest_digest(req->manifest_digest());
      if (req->delta()) {
        auto piece = DeltaCache::chunk(*delta, i);
        if (!piece) {
          chunk_resp.set_error(piece.error().message);
          SOVDEV_TRY(send(agent_id, message.correlation_data, chunk_resp));
          break;
        }
        const Verdict verdict = limits_.chunk(agent_id, object, i, object_chunks, piece->size());
        if (verdict == Verdict::throttled) {
          spent = true;
          break;
        }
        if (verdict == Verdict::refused) continue;
        chunk_resp.mutable_chunk()->set_data(std::move(*piece));
        chunk_resp.mutable_chunk()->set_delta(true);
        stats_.delta_chunks_sent++;
      } else {
        if (i >= bundle->chunk_count) {
          chunk_resp.set_error("no chunk " + std::to_string(i));
          SOVDEV_TRY(send(agent_id, message.correlation_data, chunk_resp));
          break;
        }
        SOVDEV_TRY(bundles.read_chunk(bundle->digest, i, data));
        const Verdict verdict = limits_.chunk(agent_id, object, i, object_chunks, data.size());
        if (verdict == Verdict::throttled) {
          spent = true;
          break;
        }
        if (verdict == Verdict::refused) continue;
        chunk_resp.mutable_chunk()->set_data(std::move(data));
        stats_.chunks_sent++;
      }
      chunk_resp.mutable_chunk()->set_index(i);
      if (stream && !stream->sent(i)) {
        // Every listener takes it; the request id means nothing to the others.
        chunk_resp.set_request_id(0);
        SOVDEV_TRY(broadcast(*stream, chunk_resp));
      } else {
        SOVDEV_TRY(send(agent_id, message.correlation_data, chunk_resp));
      }
    }
  }
  return {};
}

Status Server::answer_blob(const std::string& agent_id, const std::string& correlation,
                           const pb::FetchRequest& req) {
  const images::BlobServeContext context{
      db_,
      limits_,
      transfers_,
      streams_,
      options_.prefix,
      now_(),
      options_.steady(),
      [&](const pb::FetchResponse& resp) { return send(agent_id, correlation, resp); },
      [&](BroadcastStream& stream, pb::FetchResponse& resp) { return broadcast(stream, resp); },
      stats_.blobs};
  return images::answer_blob(context, agent_id, req);
}

Status Server::answer_with_delta(const std::string& agent_id, const std::string& correlation,
                                 const pb::FetchRequest& req, const store::HubBundle& bundle,
                                 pb::FetchResponse& resp, bool may_hold) {
  if (may_hold && options_.delta_hold_ms > 0 && held_.size() < kMaxHeldAnswers) {
    SOVDEV_ASSIGN(const DeltaOffer early, deltas_.offer(db_, bundle, req.base_digest(), agent_id));
    if (early.preparing) {
      held_.push_back(
          {agent_id, correlation, req,
           std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.delta_hold_ms)});
      return {};
    }
  }
  if (!req.delta_offer_only()) {
    if (!resp.mutable_manifest()->ParseFromString(bundle.envelope)) {
      return make_error(Errc::store, "stored manifest unreadable");
    }
    stats_.manifests_sent++;
  }
  SOVDEV_ASSIGN(const DeltaOffer found, deltas_.offer(db_, bundle, req.base_digest(), agent_id));
  const DeltaEntry* entry = found.entry;
  if (entry) {
    // Whole in this message when the agent takes that much and the answer stays under the cap
    // every agent enforces; else the chunked form, fetched by chunk requests as before.
    const bool whole =
        !entry->inline_envelope.empty() && entry->bytes.size() <= req.inline_delta_max() &&
        resp.ByteSizeLong() + entry->inline_envelope.size() + entry->bytes.size() + 64 <=
            kMaxFetchResponseBytes;
    // Offer-only: the offer is the body, as in the older second answer.
    pb::Signed* offer =
        req.delta_offer_only() ? resp.mutable_delta_manifest() : resp.mutable_delta_offer();
    if (!offer->ParseFromString(whole ? entry->inline_envelope : entry->envelope)) {
      return make_error(Errc::internal, "delta manifest unreadable");
    }
    if (whole) {
      resp.set_delta_data(entry->bytes);
      stats_.deltas_inline++;
    }
  } else if (found.preparing) {
    resp.set_delta_retry_ms(options_.delta_retry_ms);
    if (req.delta_offer_only()) resp.set_error("delta being prepared");
  } else {
    resp.set_delta_refusal("no delta: " + found.refusal.message);
    if (req.delta_offer_only()) resp.set_error(resp.delta_refusal());
  }
  return send(agent_id, correlation, resp);
}

Status Server::answer_epoch_key(const std::string& agent_id, const std::string& correlation,
                                const pb::FetchRequest& req) {
  const std::string& channel = req.epoch_key().channel();
  const uint64_t epoch = req.epoch_key().epoch();
  pb::FetchResponse resp;
  resp.set_schema(1);
  resp.set_request_id(req.request_id());
  resp.set_manifest_digest(req.manifest_digest());
  secrets::FleetKeys fleet(db_, no_store_key_);
  auto grant = fleet.grant(channel, epoch, agent_id);
  if (!grant) {
    // The agent asks again after its timeout; the hub goes on serving everybody else.
    spdlog::warn("epoch key of {} epoch {} for {}: {}", channel, epoch, agent_id,
                 grant.error().message);
    return {};
  }
  if (*grant) {
    pb::SealedEpochKey* key = resp.mutable_epoch_key();
    key->set_channel(channel);
    key->set_epoch(epoch);
    key->set_sealed(std::move(**grant));
    stats_.epoch_keys_sent++;
    return send(agent_id, correlation, resp);
  }
  // Which command grants it depends on whether the agent is enrolled (another read, only for
  // the refused).
  std::string enrolled_in;
  auto get = db_.prepare("SELECT channel FROM enrolled_agents WHERE agent_id = ?");
  if (get && get->bind(1, agent_id)) {
    if (auto found = get->step(); found && *found) enrolled_in = get->text(0);
  }
  const std::string head = "agent " + agent_id + " has no key for channel " + channel + " epoch " +
                           std::to_string(epoch);
  std::string text;
  if (enrolled_in.empty()) {
    text =
        head + ": run sovdev-hub agents add " + agent_id + " --pub agent.pub --channel " + channel;
  } else if (enrolled_in == channel) {
    // Enrolled after that epoch was made, or its key was replaced since: a new epoch sealed to
    // its current key (and a build with it) is what it can read.
    text = head + ": run sovdev-hub agents rotate " + agent_id + " --pub agent.pub";
  } else {
    text = head + " (it is enrolled in channel " + enrolled_in +
           "): run sovdev-hub agents remove " + agent_id + ", then sovdev-hub agents add " +
           agent_id + " --pub agent.pub --channel " + channel;
  }
  resp.set_error(text);
  stats_.epoch_keys_refused++;
  spdlog::info("{}", text);
  return send(agent_id, correlation, resp);
}

void Server::refresh_counts() {
  const LimitCounts& limits = limits_.counts();
  stats_.requests_throttled = limits.requests_throttled;
  stats_.chunks_throttled = limits.chunks_throttled;
  stats_.chunks_refused = limits.chunks_refused;
  stats_.deltas_refused = deltas_.refused_to_agents();
  stats_.transfers_in_use = transfers_.in_use();
  stats_.transfers_waiting = transfers_.waiting();
  stats_.transfer_waits = transfers_.counts().waited;
  const mqtt::Stats mqtt = client_.stats();
  stats_.messages_dropped = mqtt.dropped;
  stats_.messages_oversize = mqtt.oversize;
  stats_.queue_bytes = mqtt.queued_bytes;
  stats_.queue_bytes_peak = mqtt.queued_bytes_peak;
}

void Server::poll() {
  refresh_counts();
  deltas_.collect();
  if (held_.empty()) return;
  if (auto answered = answer_held(); !answered) {
    spdlog::warn("answering held delta requests: {}", answered.error().message);
  }
}

Status Server::answer_held() {
  const auto now = std::chrono::steady_clock::now();
  store::HubBundles bundles(db_);
  std::vector<HeldAnswer> waiting;
  Status result;
  for (auto& held : held_) {
    if (!result) continue;  // the database failed: dropped, the agents ask again after a timeout
    auto bundle = bundles.find(held.request.manifest_digest());
    if (!bundle) {
      result = std::move(bundle).error();
      continue;
    }
    if (!*bundle) continue;  // the bundle went meanwhile: the agent asks again
    auto offer = deltas_.offer(db_, **bundle, held.request.base_digest(), held.agent_id);
    if (offer && offer->preparing && now < held.until) {
      waiting.push_back(std::move(held));
      continue;
    }
    pb::FetchResponse resp;
    resp.set_schema(1);
    resp.set_request_id(held.request.request_id());
    resp.set_manifest_digest(held.request.manifest_digest());
    result =
        answer_with_delta(held.agent_id, held.correlation, held.request, **bundle, resp, false);
  }
  held_ = std::move(waiting);
  return result;
}

Status Server::on_status(const std::string& agent_id, const mqtt::Message& message) {
  if (message.payload.empty()) return {};  // a cleared retained message
  auto st = parse_agent_status(message.payload);
  if (!st) {
    reject("status of " + agent_id + ": " + st.error().message);
    return {};
  }
  if (st->agent_id() != agent_id) {
    reject("status on " + agent_id + "'s topic names agent " + st->agent_id());
    return {};
  }
  stats_.statuses++;
  store::FleetStatus fleet(db_);
  SOVDEV_TRY(fleet.upsert({agent_id, st->channel(), message.payload.str(), st->updated_at(),
                           st->state() == "offline"}));
  rollouts_.status_recorded();
  return {};
}

}  // namespace sovdev::hub
