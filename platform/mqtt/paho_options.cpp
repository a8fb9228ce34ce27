#include "platform/mqtt/paho_options.hpp"

#include <unistd.h>

#include <algorithm>
#include <memory>

namespace sovdev::mqtt {
namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

Status check_readable(const std::string& what, const std::string& path) {
  if (path.empty()) return {};
  if (::access(path.c_str(), R_OK) != 0) {
    return make_error(Errc::io, "cannot read " + what + " " + path);
  }
  return {};
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

bool uses_tls(const std::string& server) {
  return starts_with(server, "ssl://") || starts_with(server, "mqtts://");
}

Status validate(const Options& o) {
  if (o.servers.empty()) return make_error(Errc::invalid, "no broker URL given");
  bool tls = false;
  for (const auto& s : o.servers) {
    if (!starts_with(s, "tcp://") && !starts_with(s, "mqtt://") && !uses_tls(s)) {
      return make_error(Errc::invalid, "broker URL " + s +
                                           " must start with tcp:// or mqtt:// (plain) or "
                                           "ssl:// or mqtts:// (TLS)");
    }
    tls = tls || uses_tls(s);
  }
  // The list is tried in order: a plain URL beside a TLS one is a downgrade for whoever can
  // block the TLS port.
  if (tls && !std::all_of(o.servers.begin(), o.servers.end(), uses_tls)) {
    return make_error(Errc::invalid,
                      "the broker URLs mix TLS (ssl://) and plain (tcp://): "
                      "anyone who can block TLS could downgrade the connection; "
                      "use ssl:// for every broker");
  }
  if (o.client_id.empty()) return make_error(Errc::invalid, "the MQTT client id is empty");
  if (o.queue_capacity == 0 || o.max_pending_publishes == 0) {
    return make_error(Errc::invalid, "queue_capacity and max_pending_publishes must be at least 1");
  }
  if (o.will && (o.will->topic.empty() || o.will->qos < 0 || o.will->qos > 2)) {
    return make_error(Errc::invalid, "the last will needs a topic and a QoS of 0, 1 or 2");
  }
  if (tls) {
    if (o.tls.cert_file.empty() != o.tls.key_file.empty()) {
      return make_error(Errc::invalid, "a client certificate needs both cert_file and key_file");
    }
    SOVDEV_TRY(check_readable("the CA certificate", o.tls.ca_file));
    SOVDEV_TRY(check_readable("the client certificate", o.tls.cert_file));
    SOVDEV_TRY(check_readable("the client key", o.tls.key_file));
  }
  return {};
}

::mqtt::connect_options paho_connect_options(const Options& o) {
  ::mqtt::connect_options c;
  c.set_mqtt_version(MQTTVERSION_5);
  // Clean start, session expiry 0: the broker keeps no session for us. The sync protocol's
  // truth is in SQLite and it re-requests whatever a reconnect lost, so a broker session
  // would only hold queued chunks nobody asked for again, in the broker's memory.
  c.set_clean_session(false);  // v3 flag; the C library refuses it together with v5
  c.set_clean_start(true);
  c.set_keep_alive_interval(static_cast<int>(o.keepalive.count()));
  const auto timeout = std::chrono::ceil<std::chrono::seconds>(o.connect_timeout);
  c.set_connect_timeout(static_cast<int>(std::max<int64_t>(1, timeout.count())));
  if (!o.username.empty()) c.set_user_name(o.username);
  if (!o.password.empty()) c.set_password(o.password);
  c.set_servers(std::make_shared<::mqtt::string_collection>(o.servers));
  if (std::any_of(o.servers.begin(), o.servers.end(), uses_tls)) {
    ::mqtt::ssl_options ssl;
    if (!o.tls.ca_file.empty()) ssl.set_trust_store(o.tls.ca_file);
    if (!o.tls.cert_file.empty()) ssl.set_key_store(o.tls.cert_file);
    if (!o.tls.key_file.empty()) ssl.set_private_key(o.tls.key_file);
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(true);  // the broker's certificate must name the host we dialled
    // No set_error_handler: 1.2.0 hands the C library a pointer to a temporary copy of these
    // options as the handler's context, which dangles once connect() returns.
    c.set_ssl(ssl);
  }
  if (o.will) {
    const auto& w = *o.will;
    c.set_will(
        ::mqtt::will_options(w.topic, ::mqtt::binary_ref(w.payload.str()), w.qos, w.retained));
  }
  return c;
}

::mqtt::properties paho_connect_properties(const Options& o) {
  ::mqtt::properties props;
  props.add(::mqtt::property(::mqtt::property::SESSION_EXPIRY_INTERVAL, 0));
  if (o.max_packet_size > 0) {
    props.add(::mqtt::property(::mqtt::property::MAXIMUM_PACKET_SIZE,
                               static_cast<int32_t>(o.max_packet_size)));
  }
  return props;
}

::mqtt::message_ptr to_paho(const Message& m) {
  ::mqtt::properties props;
  if (!m.response_topic.empty()) {
    props.add(::mqtt::property(::mqtt::property::RESPONSE_TOPIC, m.response_topic));
  }
  if (!m.correlation_data.empty()) {
    props.add(::mqtt::property(::mqtt::property::CORRELATION_DATA, m.correlation_data));
  }
  if (m.expiry_seconds > 0) {
    props.add(::mqtt::property(::mqtt::property::MESSAGE_EXPIRY_INTERVAL,
                               static_cast<int32_t>(m.expiry_seconds)));
  }
  // The payload's buffer is shared with the library, not copied here (Paho C still copies it
  // when it queues the message). Never a null buffer: Paho C++ 1.2 dereferences it in places.
  static const auto kEmpty = std::make_shared<const std::string>();
  ::mqtt::binary_ref payload(m.payload.shared() ? m.payload.shared() : kEmpty);
  return std::make_shared<::mqtt::message>(m.topic, std::move(payload), m.qos, m.retained, props);
}

Message from_paho(const ::mqtt::message& in) {
  Message m;
  m.topic = in.get_topic();
  // Shared with the library's message rather than copied (see Payload).
  if (const auto& shared = in.get_payload_ref().ptr()) m.payload = Payload(shared);
  m.qos = in.get_qos();
  m.retained = in.is_retained();
  const auto& props = in.get_properties();
  using P = ::mqtt::property;
  if (props.contains(P::RESPONSE_TOPIC)) {
    m.response_topic = ::mqtt::get<std::string>(props, P::RESPONSE_TOPIC);
  }
  if (props.contains(P::CORRELATION_DATA)) {
    m.correlation_data = ::mqtt::get<std::string>(props, P::CORRELATION_DATA);
  }
  if (props.contains(P::MESSAGE_EXPIRY_INTERVAL)) {
    m.expiry_seconds = ::mqtt::get<uint32_t>(props, P::MESSAGE_EXPIRY_INTERVAL);
  }
  return m;
}

Error connect_error(const Options& o, int rc, int reason) {
  const std::string who = "user '" + o.username + "' (client id '" + o.client_id + "')";
  switch (reason) {
    case 0x86:
      return make_error(Errc::invalid, "the broker refused " + who +
                                           ": bad user name or password; check the password "
                                           "and the broker's password_file");
    case 0x87:
      // mosquitto answers a wrong password with this code too.
      return make_error(Errc::invalid,
                        "the broker refused " + who +
                            ": not authorized; check the password and that the user is in the "
                            "broker's password_file (on a TLS listener: the certificate's CN)");
    case 0x85:
      return make_error(Errc::invalid, "the broker refused client id '" + o.client_id + "'");
    case 0x88:
    case 0x89:
    case 0x97:
    case 0x9F:
      return make_error(Errc::unavailable, "the broker is busy or unavailable (MQTT reason code " +
                                               std::to_string(reason) + "); retrying");
    default: break;
  }
  if (reason >= 0x80) {
    return make_error(Errc::unavailable, "the broker refused the connection: MQTT reason code " +
                                             std::to_string(reason));
  }
  return make_error(Errc::unavailable, "no connection to " + joined(o.servers) + " (" +
                                           ::mqtt::exception::error_str(rc) + ")");
}

}  // namespace sovdev::mqtt
