#include "platform/kube/api_client.hpp"

#include <curl/curl.h>

#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "platform/kube/skim.hpp"

namespace sovdev::kube {
namespace {

struct BodySink {
  std::string* body;
  size_t max;
  CURL* curl = nullptr;
  JsonSkimmer* skim = nullptr;  // filters a successful answer when set
  bool overflow = false;
  int skimming = -1;    // decided at the first piece, once the status code is known
  size_t received = 0;  // every byte of the body, filtered or not
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * count;
  // Every answer counts against the cap, 2xx and filtered ones included: a server answering a
  // PATCH with 400 MB took the agent to 508 MB while the filter kept what it was asked to keep
  // (issue #19).
  if (sink->received + n > sink->max) {
    sink->overflow = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  sink->received += n;
  if (sink->skimming < 0) {
    long code = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &code);
    sink->skimming = sink->skim != nullptr && code >= 200 && code < 300 ? 1 : 0;
  }
  if (sink->skimming == 1) {
    sink->skim->feed(std::string_view(data, n));
    return n;
  }
  sink->body->append(data, n);
  return n;
}

void ensure_curl() {
  static const bool ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)ready;
}

struct SlistFree {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

ApiClient::ApiClient(const Credentials& credentials, ApiClientOptions options)
    : credentials_(credentials), options_(options), tokens_(credentials) {}

ApiClient::~ApiClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
  if (connect_to_ != nullptr) curl_slist_free_all(static_cast<curl_slist*>(connect_to_));
}

Expected<ServerAddress> split_server(const std::string& server) {
  const size_t scheme_end = server.find("://");
  if (scheme_end == std::string::npos) {
    return make_error(Errc::invalid, "server '" + server + "' is not a URL");
  }
  ServerAddress a;
  a.scheme = server.substr(0, scheme_end);
  const size_t start = scheme_end + 3;
  const size_t slash = server.find('/', start);
  const std::string authority =
      server.substr(start, slash == std::string::npos ? slash : slash - start);
  a.rest = slash == std::string::npos ? "" : server.substr(slash);
  size_t colon = std::string::npos;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos)
      return make_error(Errc::invalid, "server '" + server + "': bad IPv6 address");
    a.host = authority.substr(0, close + 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') colon = close + 1;
  } else {
    colon = authority.rfind(':');
    a.host = authority.substr(0, colon);
  }
  a.port = colon == std::string::npos ? (a.scheme == "https" ? "443" : "80")
                                      : authority.substr(colon + 1);
  if (a.host.empty() || a.port.empty() ||
      a.port.find_first_not_of("0123456789") != std::string::npos) {
    return make_error(Errc::invalid, "server '" + server + "': no host and port in it");
  }
  return a;
}

Expected<std::unique_ptr<ApiClient>> ApiClient::create(const Credentials& credentials,
                                                       ApiClientOptions options) {
  if (credentials.server.rfind("https://", 0) != 0 && credentials.server.rfind("http://", 0) != 0) {
    return make_error(Errc::invalid, credentials.source + ": server '" + credentials.server +
                                         "' is not an http(s) URL");
  }
  ensure_curl();
  std::unique_ptr<ApiClient> client(new ApiClient(credentials, options));
  CURL* c = curl_easy_init();
  if (c == nullptr) return make_error(Errc::internal, "curl_easy_init failed");
  client->curl_ = c;
  // What stays the same for every request, set once so the connection is reused.
  const Credentials& cr = client->credentials_;
  if (!cr.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(cr.ca_pem.data()), cr.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (cr.insecure_skip_tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!cr.proxy_url.empty()) curl_easy_setopt(c, CURLOPT_PROXY, cr.proxy_url.c_str());
  client->base_url_ = cr.server;
  if (!cr.tls_server_name.empty() && cr.server.rfind("https://", 0) == 0) {
    // kubeconfig's tls-server-name: the certificate is checked against (and SNI names) that
    // name while the connection goes to the server's own address. curl takes the TLS name
    // from the URL's host, so the URL names it and CONNECT_TO sends it to the real address;
    // the Host header keeps the server's, as kubectl sends it.
    SOVDEV_ASSIGN(const ServerAddress a, split_server(cr.server));
    if (cr.tls_server_name.find_first_of(":/[]@ ") != std::string::npos) {
      return make_error(Errc::invalid, cr.source + ": tls-server-name '" + cr.tls_server_name +
                                           "' is not a host name");
    }
    client->base_url_ = "https://" + cr.tls_server_name + ":" + a.port + a.rest;
    client->host_header_ = "Host: " + a.host + (a.port == "443" ? "" : ":" + a.port);
    const std::string rule = cr.tls_server_name + ":" + a.port + ":" + a.host + ":" + a.port;
    curl_slist* list = curl_slist_append(nullptr, rule.c_str());
    if (list == nullptr) return make_error(Errc::internal, "curl_slist_append failed");
    client->connect_to_ = list;
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, list);
  }
  return client;
}

Status ApiClient::configure_tls() {
  CURL* c = static_cast<CURL*>(curl_);
  // The exec plugin may hand out a new certificate with a new token: the connection follows.
  const std::string cert = tokens_.client_cert_pem(), key = tokens_.client_key_pem();
  if (cert != cert_in_use_) {
    if (!cert.empty()) {
      curl_blob cb{const_cast<char*>(cert.data()), cert.size(), CURL_BLOB_COPY};
      curl_blob kb{const_cast<char*>(key.data()), key.size(), CURL_BLOB_COPY};
      curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cb);
      curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &kb);
    }
    cert_in_use_ = cert;
  }
  return {};
}

Expected<HttpResponse> ApiClient::exchange(std::string_view method, const std::string& path,
                                           std::string_view body, std::string_view content_type,
                                           const std::string& token,
                                           const std::set<std::string>* keep) {
  CURL* c = static_cast<CURL*>(curl_);
  SOVDEV_TRY(configure_tls());
  const std::string url = base_url_ + path;
  const std::string verb(method);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, verb.c_str());
  if (verb == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  std::unique_ptr<curl_slist, SlistFree> headers;
  auto add_header = [&](const std::string& h) {
    headers.reset(curl_slist_append(headers.release(), h.c_str()));
  };
  add_header("Accept: application/json");
  add_header("User-Agent: sovdev-agent");
  if (!content_type.empty()) add_header("Content-Type: " + std::string(content_type));
  if (!token.empty()) add_header("Authorization: Bearer " + token);
  if (!host_header_.empty()) add_header(host_header_);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  HttpResponse response;
  std::optional<JsonSkimmer> skim;
  if (keep != nullptr) skim.emplace(*keep);
  BodySink sink{&response.body, options_.max_body, c, skim ? &*skim : nullptr};
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  if (sink.overflow) {
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    // curl closes a connection left in the middle of an answer: the next request opens one.
    return make_error(Errc::too_large,
                      verb + " " + url + ": the API server's answer (HTTP " + std::to_string(code) +
                          ") passed " + std::to_string(options_.max_body) +
                          " bytes and was refused; a real API server never answers this with "
                          "so much: check the server URL, or a proxy in between");
  }
  if (rc != CURLE_OK) {
    return make_error(Errc::unavailable, verb + " " + url + " (" + credentials_.source +
                                             "): " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.code);
  if (sink.skimming == 1) {
    response.body = skim->result();
    if (response.body.empty()) {
      return make_error(Errc::invalid, verb + " " + url + ": the answer is not a JSON object");
    }
  }
  return response;
}

Expected<HttpResponse> ApiClient::request(std::string_view method, const std::string& path,
                                          std::string_view body, std::string_view content_type,
                                          const std::set<std::string>* keep) {
  // Every request the agent makes is idempotent (GET, server-side apply, DELETE), so a dropped
  // connection, a timeout, 429 or a 5xx is tried again a few times, with a growing pause,
  // before it counts: a busy API server must not roll a stack back.
  std::chrono::milliseconds pause = options_.retry_pause;
  for (int attempt = 1;; attempt++) {
    SOVDEV_ASSIGN(std::string token, tokens_.token());
    auto response = exchange(method, path, body, content_type, token, keep);
    if (response && response->code == 401) {
      // A rotated service-account token or an expired exec credential: fetch it again, once.
      tokens_.invalidate();
      SOVDEV_ASSIGN(token, tokens_.token());
      response = exchange(method, path, body, content_type, token, keep);
    }
    const bool transient = response ? response->code == 429 || response->code >= 500
                                    : response.error().code == Errc::unavailable;
    if (!transient || attempt >= options_.attempts) return response;
    std::this_thread::sleep_for(pause);
    pause *= 2;
  }
}

std::string without_values(std::string_view message) {
  constexpr size_t kMax = 300;
  std::string out;
  for (size_t i = 0; i < message.size() && out.size() < kMax; i++) {
    const char ch = message[i];
    if (ch == '"') {
      // A quoted value (Go's %q): dropped whole, escapes included.
      for (i++; i < message.size() && message[i] != '"'; i++) {
        if (message[i] == '\\') i++;
      }
      out += "\"…\"";
      continue;
    }
    out += ch;
    // An unquoted value after "Invalid value: " (numbers, objects): dropped up to the next ": ".
    static constexpr std::string_view kInvalid = "Invalid value: ";
    if (out.size() >= kInvalid.size() &&
        std::string_view(out).substr(out.size() - kInvalid.size()) == kInvalid &&
        i + 1 < message.size() && message[i + 1] != '"') {
      const size_t end = message.find(": ", i + 1);
      out += "…";
      i = end == std::string_view::npos ? message.size() : end - 1;
    }
  }
  if (out.size() >= kMax) out += "…";
  return out;
}

Error api_error(std::string_view method, const std::string& path, const HttpResponse& response) {
  // The API server's message may quote what was sent (a Secret's value in a 422), so only its
  // code, its reason and its message without the quoted values reach errors, status and logs,
  // plus the field paths of its causes.
  std::string reason, message;
  auto status = nlohmann::json::parse(response.body, nullptr, false);
  if (status.is_object()) {
    if (status.contains("reason") && status["reason"].is_string()) reason = status["reason"];
    if (status.contains("message") && status["message"].is_string()) {
      message = without_values(status["message"].get<std::string>());
    }
    const auto details = status.find("details");
    if (details != status.end() && details->is_object() && details->contains("causes") &&
        (*details)["causes"].is_array()) {
      std::string fields;
      for (const auto& cause : (*details)["causes"]) {
        if (!cause.is_object() || !cause.contains("field") || !cause["field"].is_string()) continue;
        if (fields.size() > 200) {
          fields += ", …";
          break;
        }
        fields += (fields.empty() ? "" : ", ") + without_values(cause["field"].get<std::string>());
      }
      if (!fields.empty()) message += " (fields: " + fields + ")";
    }
  }
  if (message.empty()) {
    message = "an answer of " + std::to_string(response.body.size()) +
              " bytes that is not a Kubernetes Status (not shown: it may hold object data)";
  }
  message = escape_control(message);
  std::string text = std::string(method) + " " + path + ": " + std::to_string(response.code) +
                     (reason.empty() ? "" : " " + reason) + ": " + message;
  if (response.code == 401) {
    return make_error(Errc::denied, text +
                                        " (the API server did not accept the agent's "
                                        "credentials: check the kubeconfig or token)");
  }
  if (response.code == 403) {
    return make_error(Errc::denied, text +
                                        " (the agent's RBAC lacks this permission: see "
                                        "deploy/kube/rbac.yaml)");
  }
  if (response.code == 404) return make_error(Errc::not_found, text);
  if (response.code == 409) return make_error(Errc::conflict, text);
  if (response.code >= 500 || response.code == 429) return make_error(Errc::unavailable, text);
  return make_error(Errc::invalid, text);
}

}  // namespace sovdev::kube
