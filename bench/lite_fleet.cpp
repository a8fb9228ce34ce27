#include "bench/lite_fleet.hpp"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>

#include "bench/fleet_procs.hpp"
#include "bundles/hash.hpp"
#include "bundles/messages.hpp"
#include "common/hex.hpp"
#include "sovdev.pb.h"

namespace sovdev::bench {

struct LiteFleet::Agent {
  enum class Phase { connecting, ready, catalog, manifest, chunks, done };

  LiteFleet* fleet = nullptr;
  mosquitto* mosq = nullptr;
  std::string id, catalog_topic, fetch_topic, data_topic, blob_topic;
  int number = 0;  // the n of lite-<n>
  // follow() only: the agent's labels and the version it runs (empty before the first catalog).
  bool following = false;
  rollout::Labels labels;
  std::string running;
  Phase phase = Phase::connecting;
  std::string failure;  // set by a callback; reported by turn()

  std::string digest;
  pb::BundleManifest manifest;
  std::vector<bool> have;
  uint32_t held = 0;
  std::vector<uint32_t> missing;          // ascending, not asked for
  std::map<uint32_t, int64_t> in_flight;  // index → when asked
  uint64_t stream = 0, seen = 0;          // the hub's broadcast stream followed
  uint64_t request_id = 0, requests = 0, bytes = 0, expiries = 0, gaps = 0, duplicates = 0;
  int64_t asked_manifest_ms = 0, last_arrival_ms = 0;
  bool wants_more = false;  // chunks arrived: ask for more at the end of the turn

  ~Agent() {
    if (mosq) mosquitto_destroy(mosq);
  }

  void send(pb::FetchRequest request) {
    request.set_schema(1);
    request.set_agent_id(id);
    request.set_request_id(++request_id);
    request.set_manifest_digest(digest);
    request.set_broadcast(true);
    request.set_broadcast_stream(stream);
    request.set_broadcast_seen(seen);
    const std::string bytes_out = request.SerializeAsString();
    mosquitto_property* props = nullptr;
    mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, data_topic.c_str());
    const int rc =
        mosquitto_publish_v5(mosq, nullptr, fetch_topic.c_str(), static_cast<int>(bytes_out.size()),
                             bytes_out.data(), 1, false, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS) failure = std::string("publish: ") + mosquitto_strerror(rc);
    requests++;
  }

  void ask_manifest(int64_t now) {
    pb::FetchRequest request;
    request.set_want_manifest(true);
    asked_manifest_ms = now;
    send(std::move(request));
  }

  // The lowest missing chunks, up to the window, in as few ranges as they make.
  void fill_window(int64_t now) {
    if (phase != Phase::chunks) return;
    pb::FetchRequest request;
    size_t taken = 0;
    while (in_flight.size() < fleet->options_.window && taken < missing.size()) {
      const uint32_t index = missing[taken++];
      in_flight[index] = now;
      add_chunk(request, index);
    }
    missing.erase(missing.begin(), missing.begin() + static_cast<std::ptrdiff_t>(taken));
    if (request.chunks_size() > 0) send(std::move(request));
  }

  void lacking_again(uint32_t index) {
    missing.insert(std::lower_bound(missing.begin(), missing.end(), index), index);
  }

  void on_catalog(std::string_view signed_catalog, int64_t now) {
    if (phase != Phase::catalog) return;
    auto catalog = fleet->trust_.verify_catalog(signed_catalog);
    if (!catalog) {
      failure = "catalog: " + catalog.error().message;
      return;
    }
    if (catalog->entries_size() == 0) return;  // nothing published yet
    start_pull(catalog->entries(0).manifest_digest(), now);
  }

  void start_pull(const std::string& goal, int64_t now) {
    digest = goal;
    held = 0;
    in_flight.clear();
    stream = seen = 0;
    // Listening before asking: the manifest's answer then says where the broadcast stands.
    blob_topic = fleet->options_.prefix + "/blob/" + to_hex(digest);
    mosquitto_subscribe(mosq, nullptr, blob_topic.c_str(), 0);
    phase = Phase::manifest;
    ask_manifest(now);
  }

  // follow(): every catalog names the version this agent should run; a new one is pulled.
  void on_followed_catalog(std::string_view signed_catalog, int64_t now) {
    auto catalog = fleet->trust_.verify_catalog(signed_catalog);
    if (!catalog) {
      failure = "catalog: " + catalog.error().message;
      return;
    }
    if (catalog->entries_size() == 0) return;
    const pb::CatalogEntry& entry = catalog->entries(0);
    if (running.empty()) {  // the version it ran before it connected
      running = entry.manifest_digest();
      report();
    }
    std::string goal = entry.manifest_digest();
    if (entry.has_rollout() && rollout::admits(entry.rollout(), labels, id)) {
      goal = entry.rollout().manifest_digest();
    }
    if (goal == running) return;
    if (phase == Phase::manifest || phase == Phase::chunks) {
      if (goal == digest) return;  // pulling it already
      mosquitto_unsubscribe(mosq, nullptr, blob_topic.c_str());
    }
    start_pull(goal, now);
  }

  // What the agent's status says once a version is applied: healthy on it, with its labels.
  void report() {
    pb::AgentStatus st;
    st.set_schema(1);
    st.set_agent_id(id);
    st.set_channel(fleet->options_.channel);
    st.set_state("healthy");
    st.set_applied_digest(running);
    for (const auto& [key, value] : labels) (*st.mutable_labels())[key] = value;
    st.set_updated_at(static_cast<int64_t>(std::time(nullptr)));
    const std::string bytes_out = st.SerializeAsString();
    const std::string topic = fleet->options_.prefix + "/status/" + id;
    const int rc =
        mosquitto_publish_v5(mosq, nullptr, topic.c_str(), static_cast<int>(bytes_out.size()),
                             bytes_out.data(), 1, false, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) failure = std::string("status: ") + mosquitto_strerror(rc);
  }

  void on_manifest(const pb::FetchResponse& response) {
    std::string got;
    auto verified = fleet->trust_.verify_manifest(response.manifest(), &got);
    if (!verified || got != digest) {
      failure =
          "manifest: " + (verified ? std::string("another digest") : verified.error().message);
      return;
    }
    manifest = std::move(*verified);
    const auto total = static_cast<uint32_t>(manifest.chunk_sha256_size());
    have.assign(total, false);
    missing.resize(total);
    for (uint32_t i = 0; i < total; i++) missing[i] = i;
    if (response.broadcast_stream() != 0) {
      stream = response.broadcast_stream();
      seen = response.broadcast_seq();
    }
    phase = Phase::chunks;
    wants_more = true;
  }

  void on_chunk(const pb::FetchResponse& response, int64_t now) {
    // The broadcast numbering, followed as the agent follows it (agent/fetch.cpp).
    const uint64_t seq = response.broadcast_seq();
    if (seq != 0) {
      if (response.broadcast_stream() != stream) {
        stream = response.broadcast_stream();
        seen = seq;
      } else {
        if (seq > seen + 1) {
          gaps++;
          for (const auto& [index, when] : in_flight) lacking_again(index);
          in_flight.clear();
        }
        seen = std::max(seen, seq);
      }
    }
    const uint32_t index = response.chunk().index();
    if (index >= have.size() || have[index]) {
      duplicates++;
      return;
    }
    const bool asked = in_flight.erase(index) > 0;
    if (!asked) {
      const auto at = std::lower_bound(missing.begin(), missing.end(), index);
      if (at == missing.end() || *at != index) return;
      missing.erase(at);
    }
    if (fleet->options_.check_chunks &&
        sha256(response.chunk().data()) != manifest.chunk_sha256(static_cast<int>(index))) {
      lacking_again(index);
      wants_more = true;
      return;
    }
    have[index] = true;
    held++;
    last_arrival_ms = now;
    wants_more = true;
    if (held == have.size()) {
      phase = Phase::done;
      mosquitto_unsubscribe(mosq, nullptr, blob_topic.c_str());
      if (following) {
        running = digest;
        report();
      }
    }
  }

  void on_message(const mosquitto_message& m) {
    const int64_t now = monotonic_ms();
    const std::string_view payload(static_cast<const char*>(m.payload),
                                   static_cast<size_t>(m.payloadlen));
    if (catalog_topic == m.topic) {
      return following ? on_followed_catalog(payload, now) : on_catalog(payload, now);
    }
    pb::FetchResponse response;
    if (!response.ParseFromArray(m.payload, m.payloadlen)) return;
    bytes += payload.size();
    if (response.manifest_digest() != digest) return;
    if (response.has_manifest() && phase == Phase::manifest) return on_manifest(response);
    if (response.has_chunk() && !response.chunk().delta() && phase == Phase::chunks) {
      on_chunk(response, now);
    }
  }

  // What has waited request_timeout with nothing arriving is asked for again.
  void tick(int64_t now) {
    const int64_t timeout = fleet->options_.request_timeout_ms;
    if (phase == Phase::manifest && now - asked_manifest_ms >= timeout) ask_manifest(now);
    if (phase != Phase::chunks) return;
    bool expired = false;
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      if (now - std::max(it->second, last_arrival_ms) >= timeout) {
        lacking_again(it->first);
        it = in_flight.erase(it);
        expired = true;
      } else {
        ++it;
      }
    }
    if (expired) {
      expiries++;
      stream = seen = 0;
    }
    fill_window(now);
  }
};

namespace {

extern "C" void lite_on_connect(mosquitto*, void* self, int rc) {
  auto* agent = static_cast<LiteFleet::Agent*>(self);
  if (rc != 0) {
    agent->failure = std::string("connect refused: ") + mosquitto_connack_string(rc);
    return;
  }
  agent->phase = LiteFleet::Agent::Phase::ready;
}

extern "C" void lite_on_message(mosquitto*, void* self, const mosquitto_message* m,
                                const mosquitto_property*) {
  static_cast<LiteFleet::Agent*>(self)->on_message(*m);
}

}  // namespace

LiteFleet::LiteFleet(const TrustPolicy& trust, LiteOptions options)
    : trust_(trust), options_(std::move(options)) {
  mosquitto_lib_init();
}

LiteFleet::~LiteFleet() {
  agents_.clear();
  mosquitto_lib_cleanup();
}

Status LiteFleet::connect(int first, int count, int64_t deadline_ms) {
  for (int i = 0; i < count; i++) {
    auto agent = std::make_unique<Agent>();
    agent->fleet = this;
    agent->number = first + i;
    agent->id = "lite-" + std::to_string(first + i);
    agent->catalog_topic = options_.prefix + "/catalog/" + options_.channel;
    agent->fetch_topic = options_.prefix + "/fetch/" + agent->id;
    agent->data_topic = options_.prefix + "/agent/" + agent->id + "/data";
    agent->mosq = mosquitto_new(("sovdev-agent-" + agent->id).c_str(), true, agent.get());
    if (!agent->mosq) return make_error(Errc::internal, "mosquitto_new failed");
    mosquitto_int_option(agent->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(agent->mosq, MOSQ_OPT_TCP_NODELAY, 1);  // as the agent's socket
    mosquitto_connect_callback_set(agent->mosq, lite_on_connect);
    mosquitto_message_v5_callback_set(agent->mosq, lite_on_message);
    const int rc = mosquitto_connect(agent->mosq, options_.host.c_str(), options_.port, 900);
    if (rc != MOSQ_ERR_SUCCESS) {
      return make_error(Errc::unavailable, agent->id + ": connect to " + options_.host + ":" +
                                               std::to_string(options_.port) + ": " +
                                               mosquitto_strerror(rc));
    }
    agents_.push_back(std::move(agent));
  }
  while (monotonic_ms() < deadline_ms) {
    SOVDEV_TRY(turn(10));
    if (std::all_of(agents_.begin(), agents_.end(),
                    [](const auto& a) { return a->phase != Agent::Phase::connecting; })) {
      return {};
    }
  }
  return make_error(Errc::unavailable, "the broker did not accept every lite agent in time");
}

Status LiteFleet::pull(int64_t deadline_ms) {
  for (auto& agent : agents_) {
    agent->phase = Agent::Phase::catalog;
    mosquitto_subscribe(agent->mosq, nullptr, agent->data_topic.c_str(), 1);
    mosquitto_subscribe(agent->mosq, nullptr, agent->catalog_topic.c_str(), 1);
  }
  while (monotonic_ms() < deadline_ms) {
    SOVDEV_TRY(turn(5));
    if (std::all_of(agents_.begin(), agents_.end(),
                    [](const auto& a) { return a->phase == Agent::Phase::done; })) {
      return {};
    }
  }
  int done = 0;
  for (const auto& a : agents_) done += a->phase == Agent::Phase::done ? 1 : 0;
  return make_error(Errc::unavailable, std::to_string(done) + " of " +
                                           std::to_string(agents_.size()) +
                                           " lite agents completed in time");
}

Status LiteFleet::follow(int64_t deadline_ms, const std::function<bool()>& stop) {
  for (auto& agent : agents_) {
    agent->phase = Agent::Phase::catalog;
    agent->following = true;
    if (options_.labels) agent->labels = options_.labels(agent->number);
    mosquitto_subscribe(agent->mosq, nullptr, agent->data_topic.c_str(), 1);
    mosquitto_subscribe(agent->mosq, nullptr, agent->catalog_topic.c_str(), 1);
  }
  while (monotonic_ms() < deadline_ms) {
    SOVDEV_TRY(turn(5));
    if (stop()) return {};
  }
  return make_error(Errc::unavailable, "lite agents: the deadline passed while following");
}

Status LiteFleet::turn(int wait_ms) {
  std::vector<pollfd> fds(agents_.size());
  for (size_t i = 0; i < agents_.size(); i++) {
    mosquitto* m = agents_[i]->mosq;
    fds[i] = {mosquitto_socket(m),
              static_cast<short>(POLLIN | (mosquitto_want_write(m) ? POLLOUT : 0)), 0};
  }
  if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) {
    return make_error(Errc::io, std::string("poll: ") + std::strerror(errno));
  }
  for (size_t i = 0; i < agents_.size(); i++) {
    Agent& a = *agents_[i];
    int rc = MOSQ_ERR_SUCCESS;
    if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) rc = mosquitto_loop_read(a.mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && (fds[i].revents & POLLOUT)) rc = mosquitto_loop_write(a.mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop_misc(a.mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
      return make_error(Errc::unavailable, a.id + ": " + mosquitto_strerror(rc));
    }
    if (!a.failure.empty()) return make_error(Errc::invalid, a.id + ": " + a.failure);
  }
  const int64_t now = monotonic_ms();
  const bool tick = now - last_tick_ms_ >= 100;
  if (tick) last_tick_ms_ = now;
  for (auto& agent : agents_) {
    if (agent->wants_more) {
      agent->wants_more = false;
      agent->fill_window(now);
    }
    if (tick) agent->tick(now);
  }
  return {};
}

uint64_t LiteFleet::bytes_received() const {
  uint64_t sum = 0;
  for (const auto& a : agents_) sum += a->bytes;
  return sum;
}

std::string LiteFleet::counts() const {
  uint64_t requests = 0, expiries = 0, gaps = 0, duplicates = 0;
  for (const auto& a : agents_) {
    requests += a->requests;
    expiries += a->expiries;
    gaps += a->gaps;
    duplicates += a->duplicates;
  }
  return std::to_string(requests) + " requests, " + std::to_string(expiries) + " timeouts, " +
         std::to_string(gaps) + " gaps in the broadcast numbering, " + std::to_string(duplicates) +
         " chunks held already";
}

}  // namespace sovdev::bench
