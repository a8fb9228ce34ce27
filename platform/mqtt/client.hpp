// The MQTT transport the hub and the agent depend on: MQTT v5, QoS 1, a bounded event queue
// filled by the library's thread and drained by the owner's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::mqtt {

// A message's bytes, shared rather than copied: a received payload is Paho C++'s own buffer,
// and a published one becomes it, saving one copy each way (every chunk of a bundle passes
// through here, in the hub and in every agent). Immutable once made.
class Payload {
 public:
  Payload() = default;
  Payload(std::string bytes)  // NOLINT(google-explicit-constructor): a payload is its bytes
      : bytes_(std::make_shared<const std::string>(std::move(bytes))) {}
  Payload(const char* bytes)  // NOLINT(google-explicit-constructor)
      : Payload(std::string(bytes ? bytes : "")) {}
  explicit Payload(std::shared_ptr<const std::string> shared) : bytes_(std::move(shared)) {}

  const std::string& str() const { return bytes_ ? *bytes_ : empty_string(); }
  operator std::string_view() const { return str(); }  // NOLINT(google-explicit-constructor)
  const char* data() const { return str().data(); }
  size_t size() const { return str().size(); }
  bool empty() const { return str().empty(); }
  // The shared buffer (null when empty), for handing to the MQTT library.
  const std::shared_ptr<const std::string>& shared() const { return bytes_; }
  friend bool operator==(const Payload& a, std::string_view b) { return a.str() == b; }

 private:
  static const std::string& empty_string() {
    static const std::string empty;
    return empty;
  }
  std::shared_ptr<const std::string> bytes_;
};

struct Message {
  std::string topic;
  Payload payload;
  int qos = 1;
  bool retained = false;
  std::string response_topic;    // MQTT v5 RESPONSE_TOPIC
  std::string correlation_data;  // MQTT v5 CORRELATION_DATA
  uint32_t expiry_seconds = 0;   // MQTT v5 MESSAGE_EXPIRY_INTERVAL, 0 = none
};

struct TlsOptions {
  std::string ca_file;    // CA that signed the broker's certificate
  std::string cert_file;  // client certificate (its CN is the user name on the TLS listener)
  std::string key_file;   // the client certificate's private key
};

// The largest payload accepted on the topics a filter matches ("+" and "#" as in MQTT).
// Larger messages are dropped on arrival, before they are queued or copied, and counted
// (Stats::oversize): a sender allowed on a topic of small messages cannot make the receiver
// hold megabytes of them.
struct TopicLimit {
  std::string filter;
  size_t max_payload = 0;
};

struct Options;
// Options::queue_bytes with its default worked out.
size_t queue_byte_limit(const Options& options);

// Whether `topic` is matched by `filter` (MQTT rules, without $share).
bool topic_matches(std::string_view filter, std::string_view topic);

struct Options {
  std::vector<std::string>
      servers;  // "tcp://127.0.0.1:1883" or "ssl://127.0.0.1:8883"; tried in order
  std::string client_id;
  std::string username;
  std::string password;
  TlsOptions tls;               // used for ssl:// servers
  std::optional<Message> will;  // retained last will
  std::chrono::seconds keepalive{30};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds reconnect_min{500}, reconnect_max{30000};
  size_t queue_capacity = 64;  // messages held between Paho's thread and the owner's
  // Bytes those messages may hold (see EventQueue). 0, the default: 256 KiB for each of
  // queue_capacity (the agent's 48 → 12 MiB, where 48 × 1.15 MiB had passed its MemoryMax=64M);
  // an owner that falls behind on bigger messages loses some, and the sync protocol asks again.
  // Owners may set their own (the hub: hub/broker_options.cpp). SIZE_MAX: no byte limit.
  size_t queue_bytes = 0;
  // Checked in order; the first filter matching the topic decides. Empty: only
  // max_packet_size bounds a message.
  std::vector<TopicLimit> topic_limits;
  size_t max_pending_publishes = 64;  // outgoing QoS 1 messages not yet acknowledged
  // Largest packet the broker may send us (MQTT v5 MAXIMUM_PACKET_SIZE); the broker drops
  // larger messages for this client instead of making it hold them. 0 = no limit. The default
  // fits a 1 MiB chunk with its envelope, topic and properties.
  uint32_t max_packet_size = 1024 * 1024 + 128 * 1024;
  // For a program that sends bursts bigger than its socket's buffer (the hub): a topic this
  // client may publish and subscribe to, for a second connection ("<client_id>-wake") whose
  // messages to itself wake the library when a burst stalls (paho_client.cpp). Empty: none.
  std::string wake_topic;
  // The socket's send buffer (SO_SNDBUF, capped by net.core.wmem_max); 0 = the kernel's
  // autotuning. A burst the buffer cannot take is written in part, and Paho C's receive thread
  // finishes it in steps with a 100 ms sleep between them.
  uint32_t send_buffer_bytes = 0;
};

// Connection events are never dropped. `connected` follows every successful connection, the
// first included, once the remembered subscriptions have been sent again. While the owner is
// not reading, a run of them collapses to the latest state (lost, connected, lost → lost).
struct Event {
  enum class Kind { message, connected, connection_lost };
  Kind kind = Kind::message;
  Message message;     // for message
  std::string reason;  // for connection_lost
};

struct Stats {
  uint64_t received = 0;           // messages that arrived from the broker, dropped ones included
  uint64_t dropped = 0;            // arrived while the queue was full, and thrown away
  uint64_t oversize = 0;           // larger than their topic's limit, thrown away on arrival
  uint64_t queued_bytes = 0;       // bytes waiting in the queue now
  uint64_t queued_bytes_peak = 0;  // the most that ever waited
  uint64_t published = 0;          // publishes the broker acknowledged (QoS 0: written)
  uint64_t bytes_in = 0;           // payload bytes received
  uint64_t bytes_out = 0;          // payload bytes of acknowledged publishes
  uint64_t reconnects = 0;         // successful connections after the first one
  uint64_t publish_failed = 0;     // publishes refused by the broker (v5 reason code, e.g. ACL)
  uint64_t nudges = 0;  // wake-ups of the library's stalled send thread (paho_client.cpp)
};

// One connection to the broker. Not thread-safe: one owner thread calls every method; the
// library's own thread only fills the event queue.
class Client {
 public:
  virtual ~Client() = default;
  // The first connection. Blocks up to connect_timeout per server and says what went wrong
  // (bad credentials, nothing listening, TLS). Whether or not it succeeds, the client keeps the
  // connection up from then on: next() retries with capped, jittered exponential backoff.
  virtual Status connect() = 0;
  // Waits for the broker's answer when connected; remembered either way and subscribed again
  // after every reconnect. A filter the broker refuses is an error and is forgotten.
  virtual Status subscribe(const std::string& filter, int qos) = 0;
  // subscribe() to one topic name (no wildcards) whose messages are handed over as if they
  // had arrived on `deliver_as`: an owner that routes by topic takes a shared topic carrying
  // the same kind of message (the sync protocol's broadcast chunks) as its own.
  virtual Status subscribe_as(const std::string& topic, int qos, const std::string& deliver_as) = 0;
  // Forgets a subscription and asks the broker to end it, without waiting for the answer.
  // Messages on it that were already under way are dropped, not handed over.
  virtual Status unsubscribe(const std::string& filter) = 0;
  // Never blocks on the network. Errc::unavailable when disconnected or when
  // max_pending_publishes are still unacknowledged: the caller retries later.
  virtual Status publish(const Message& message) = 0;
  // The next event, waiting up to `timeout`. Also the reconnection driver: call it regularly
  // (every turn of the owner's loop), or reconnection waits for the next call.
  virtual std::optional<Event> next(std::chrono::milliseconds timeout) = 0;
  // A clean DISCONNECT, after which the broker discards the will: publish a final status first.
  // Waits for a connection attempt in flight to end (up to connect_timeout per server).
  // connect() opens the connection again.
  virtual Status disconnect() = 0;
  virtual Stats stats() const = 0;
};

// Never null. Invalid options (no server, unreadable TLS files, a malformed URL) are reported
// by connect().
std::unique_ptr<Client> make_paho_client(const Options& options);

}  // namespace sovdev::mqtt
