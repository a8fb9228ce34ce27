// A registry over the distribution v2 API with libcurl: manifests by tag or digest, blobs by
// digest (redirects followed, as registries send blobs to object storage), and the anonymous
// bearer-token flow of Docker Hub and GHCR. The registry is not trusted: every answer is
// bounded, every manifest is hashed and compared with what it was asked as (and with the
// Docker-Content-Digest the registry claims), every blob is checked as it streams.
#include <curl/curl.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "platform/oci/checked.hpp"
#include "platform/oci/digest.hpp"
#include "platform/oci/media.hpp"
#include "platform/oci/source.hpp"

namespace sovdev::oci {
namespace {

constexpr size_t kMaxErrorBody = 4096;
constexpr size_t kMaxTokenBody = 64 * 1024;
constexpr long kConnectTimeoutMs = 15000;
constexpr long kLowSpeedBytes = 1024;     // slower than this ...
constexpr long kLowSpeedSeconds = 60;     // ... for this long: the transfer is given up
constexpr long kSmallTimeoutMs = 120000;  // a manifest or a token, whole

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlList = std::unique_ptr<curl_slist, SlistFree>;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// What one answer said beside its body (the last answer's, after redirects).
struct Answer {
  long code = 0;
  std::string content_type;
  std::string docker_digest;
  std::string authenticate;
  std::string error_body;  // the start of a non-2xx answer's body, for the message
};

struct Transfer {
  CURL* curl = nullptr;
  const ByteSink* body = nullptr;  // 2xx bodies go here
  Answer answer;
  Status failed;  // the body sink's error, which stopped the transfer
  bool header_overflow = false;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  const std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new answer (after a redirect or a 100): start over
    t->answer = Answer{};
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == line.npos) return n;
  const std::string key = lower(trim(line.substr(0, colon)));
  const std::string_view value = trim(line.substr(colon + 1));
  if (value.size() > 8192) {
    t->header_overflow = true;
    return 0;
  }
  if (key == "content-type") {
    t->answer.content_type = std::string(trim(value.substr(0, value.find(';'))));
  } else if (key == "docker-content-digest") {
    t->answer.docker_digest = std::string(value);
  } else if (key == "www-authenticate") {
    t->answer.authenticate = std::string(value);
  }
  return n;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300) {
    if (auto ok = (*t->body)(std::string_view(data, n)); !ok) {
      t->failed = std::move(ok);
      return 0;
    }
    return n;
  }
  std::string& e = t->answer.error_body;
  e.append(data, std::min(n, kMaxErrorBody - e.size()));
  return e.size() >= kMaxErrorBody ? 0 : n;  // enough to explain it: stop reading
}

// WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="...",scope="..."
std::map<std::string, std::string> bearer_params(std::string_view header) {
  std::map<std::string, std::string> out;
  header = trim(header);
  if (lower(header.substr(0, 7)) != "bearer ") return out;
  std::string_view rest = header.substr(7);
  while (!rest.empty()) {
    rest = trim(rest);
    const size_t eq = rest.find('=');
    if (eq == rest.npos) break;
    const std::string key = lower(trim(rest.substr(0, eq)));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; i++) {
        if (rest[i] == '\\' && i + 1 < rest.size()) i++;
        value += rest[i];
      }
      rest.remove_prefix(std::min(rest.size(), i + 1));
    } else {
      const size_t end = rest.find(',');
      value = std::string(trim(rest.substr(0, end)));
      rest.remove_prefix(end == rest.npos ? rest.size() : end);
    }
    out[key] = value;
    rest = trim(rest);
    if (!rest.empty() && rest.front() == ',') rest.remove_prefix(1);
  }
  return out;
}

std::string url_escape(CURL* c, const std::string& s) {
  char* e = curl_easy_escape(c, s.c_str(), static_cast<int>(s.size()));
  std::string out = e != nullptr ? e : "";
  curl_free(e);
  return out;
}

class RegistrySource final : public ImageSource {
 public:
  explicit RegistrySource(std::string base) : base_(std::move(base)) {}

  Status open() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_.reset(curl_easy_init());
    if (!curl_) return make_error(Errc::internal, "curl_easy_init failed");
    return {};
  }

  Expected<Fetched> manifest(const Reference& ref, std::string_view tag_or_digest) override {
    const std::string what =
        "registry " + base_ + ": manifest " + ref.repository + ":" + std::string(tag_or_digest);
    std::string want;
    if (tag_or_digest.rfind("sha256:", 0) == 0) {
      SOVDEV_ASSIGN(want, parse_digest(tag_or_digest));
    }
    std::string bytes;
    const ByteSink collect = [&](std::string_view b) -> Status {
      if (b.size() > kMaxJsonBytes - bytes.size()) {
        return make_error(Errc::too_large, what + ": more than 4 MiB; refused");
      }
      bytes.append(b);
      return {};
    };
    const std::string url =
        base_ + "/v2/" + ref.repository + "/manifests/" + std::string(tag_or_digest);
    SOVDEV_ASSIGN(Answer answer, with_retries([&] {
                    bytes.clear();
                    return get(ref, url, media::kManifestAccept, collect, false, what);
                  }));
    if (media::is_schema1(answer.content_type)) {
      return make_error(Errc::invalid, what +
                                           ": a Docker schema 1 manifest, which is not "
                                           "supported; push the image again with a current "
                                           "client (schema 2 or OCI)");
    }
    std::string got = sovdev::sha256(bytes);
    if (!want.empty() && got != want) {
      return make_error(Errc::signature, what + ": the answer hashes to " + format_digest(got) +
                                             ", not the digest asked for; refused");
    }
    if (!answer.docker_digest.empty() && answer.docker_digest != format_digest(got)) {
      return make_error(Errc::signature, what + ": the registry says its digest is " +
                                             answer.docker_digest.substr(0, 80) +
                                             " but the bytes hash to " + format_digest(got) +
                                             "; refused");
    }
    return Fetched{std::move(answer.content_type), std::move(bytes), std::move(got)};
  }

  Status blob(const Reference& ref, std::string_view raw_digest, uint64_t size,
              const ByteSink& sink) override {
    const std::string digest = format_digest(raw_digest);
    const std::string what = "registry " + base_ + ": blob " + ref.repository + "@" + digest;
    detail::CheckedStream stream(what, raw_digest, size, sink);
    const ByteSink pass = [&](std::string_view b) { return stream.write(b); };
    const std::string url = base_ + "/v2/" + ref.repository + "/blobs/" + digest;
    // Tried again only while the sink has nothing: what it got cannot be taken back.
    SOVDEV_TRY(with_retries([&] { return get(ref, url, "", pass, true, what); },
                            [&] { return stream.received() == 0; }));
    return stream.finish();
  }

 private:
  // A registry that is busy (429, 5xx) or a dropped connection gets three tries, 0.5 s then 1 s
  // apart, while `restartable` holds.
  template <class Fn>
  Expected<Answer> with_retries(Fn&& attempt, const std::function<bool()>& restartable = {}) {
    auto pause = std::chrono::milliseconds(500);
    for (int tries = 1;; tries++) {
      auto answer = attempt();
      if (answer || answer.error().code != Errc::unavailable || tries >= 3 ||
          (restartable && !restartable())) {
        return answer;
      }
      std::this_thread::sleep_for(pause);
      pause *= 2;
    }
  }

  // A GET with the token of the repository's pull scope when the registry asked for one.
  Expected<Answer> get(const Reference& ref, const std::string& url, std::string_view accept,
                       const ByteSink& body, bool large, const std::string& what) {
    const std::string scope = "repository:" + ref.repository + ":pull";
    SOVDEV_ASSIGN(Answer answer, perform(url, accept, tokens_[scope], body, large, what));
    if (answer.code == 401) {
      const auto params = bearer_params(answer.authenticate);
      if (params.count("realm") == 0) {
        return make_error(Errc::denied,
                          what + ": the registry asks for credentials (HTTP 401, " +
                              answer.authenticate.substr(0, 100) +
                              "); only anonymous pulls are supported: mirror the image to a "
                              "registry or OCI layout of your own (--image-source)");
      }
      SOVDEV_ASSIGN(tokens_[scope], fetch_token(params, scope, what));
      SOVDEV_ASSIGN(answer, perform(url, accept, tokens_[scope], body, large, what));
    }
    if (answer.code >= 200 && answer.code < 300) return answer;
    const std::string said = answer.error_body.substr(0, 300);
    const std::string status = " (HTTP " + std::to_string(answer.code) + ": " + said + ")";
    if (answer.code == 404) return make_error(Errc::not_found, what + ": not found" + status);
    if (answer.code == 401 || answer.code == 403) {
      return make_error(Errc::denied, what + ": refused" + status);
    }
    return make_error(Errc::unavailable, what + ": the registry failed" + status);
  }

  Expected<std::string> fetch_token(const std::map<std::string, std::string>& params,
                                    const std::string& scope, const std::string& what) {
    const std::string& realm = params.at("realm");
    if (realm.rfind("https://", 0) != 0 && realm.rfind("http://", 0) != 0) {
      return make_error(Errc::denied, what + ": the token realm '" + realm.substr(0, 100) +
                                          "' is not an http(s) URL");
    }
    std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
    if (const auto s = params.find("service"); s != params.end()) {
      url += "service=" + url_escape(curl_.get(), s->second) + "&";
    }
    const auto asked = params.find("scope");
    url += "scope=" + url_escape(curl_.get(), asked != params.end() ? asked->second : scope);
    std::string bytes;
    const ByteSink collect = [&](std::string_view b) -> Status {
      if (b.size() > kMaxTokenBody - bytes.size()) {
        return make_error(Errc::too_large, what + ": the token answer passed 64 KiB; refused");
      }
      bytes.append(b);
      return {};
    };
    SOVDEV_ASSIGN(const Answer answer, perform(url, "", "", collect, false, what + ": token"));
    if (answer.code != 200) {
      return make_error(Errc::denied, what + ": the token service " + realm.substr(0, 100) +
                                          " answered HTTP " + std::to_string(answer.code));
    }
    const auto j = nlohmann::json::parse(bytes, nullptr, false);
    std::string token;
    for (const char* key : {"token", "access_token"}) {
      if (token.empty() && j.is_object() && j.contains(key) && j[key].is_string()) {
        token = j[key].get<std::string>();
      }
    }
    if (token.empty() || token.size() > 16384 ||
        token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                "-._~+/=") != std::string::npos) {
      return make_error(Errc::denied, what + ": the token service gave no usable token");
    }
    return token;
  }

  Expected<Answer> perform(const std::string& url, std::string_view accept,
                           const std::string& token, const ByteSink& body, bool large,
                           const std::string& what) {
    CURL* c = curl_.get();
    curl_easy_reset(c);
    CurlList headers;
    const auto add = [&](const std::string& h) {
      headers.reset(curl_slist_append(headers.release(), h.c_str()));
    };
    if (!accept.empty()) add("Accept: " + std::string(accept));
    if (!token.empty()) add("Authorization: Bearer " + token);
    add("User-Agent: sovdev-hub");
    Transfer t;
    t.curl = c;
    t.body = &body;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    // Blobs are redirected to object storage; curl drops our Authorization header when the
    // host changes (CURLOPT_UNRESTRICTED_AUTH stays off).
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, large ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, kLowSpeedBytes);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, kLowSpeedSeconds);
    if (!large) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, kSmallTimeoutMs);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    const CURLcode rc = curl_easy_perform(c);
    if (!t.failed) return std::move(t.failed).error();
    if (t.header_overflow) {
      return make_error(Errc::too_large, what + ": a header line passed 8 KiB; refused");
    }
    if (rc == CURLE_WRITE_ERROR && t.answer.error_body.size() >= kMaxErrorBody) {
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.answer.code);
      return std::move(t.answer);
    }
    if (rc != CURLE_OK) {
      return make_error(Errc::unavailable, what + ": " + curl_easy_strerror(rc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.answer.code);
    return std::move(t.answer);
  }

  std::string base_;
  std::unique_ptr<CURL, CurlFree> curl_;
  std::map<std::string, std::string> tokens_;  // by scope
};

}  // namespace

Expected<std::unique_ptr<ImageSource>> open_registry(std::string_view base_url) {
  std::string base(base_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0) {
    return make_error(Errc::usage, "image source '" + base + "' is not an http(s) URL");
  }
  auto source = std::make_unique<RegistrySource>(std::move(base));
  SOVDEV_TRY(source->open());
  return std::unique_ptr<ImageSource>(std::move(source));
}

}  // namespace sovdev::oci
