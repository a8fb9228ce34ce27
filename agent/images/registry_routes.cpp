#include "agent/images/registry_routes.hpp"

#include <nlohmann/json.hpp>

#include "common/hex.hpp"

namespace sovdev::agent::images {
namespace {

bool lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool valid_name_component(std::string_view part) {
  size_t i = 0;
  for (;;) {
    const size_t run = i;
    while (i < part.size() && lower_alnum(part[i])) ++i;
    if (i == run) return false;
    if (i == part.size()) return true;
    const size_t sep = i;
    if (part[i] == '.') {
      ++i;
    } else if (part[i] == '_') {
      ++i;
      if (i < part.size() && part[i] == '_') ++i;
    } else if (part[i] == '-') {
      while (i < part.size() && part[i] == '-') ++i;
    }
    if (i == sep) return false;
  }
}

// A tag as the spec writes it: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
bool looks_like_tag(std::string_view ref) {
  if (ref.empty() || ref.size() > 128 || ref.front() == '.' || ref.front() == '-') return false;
  for (char c : ref) {
    const bool ok = lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// algorithm ":" encoded, as the spec's digest grammar (loosely: the algorithm's own rules
// decide the encoded part's form).
bool looks_like_digest(std::string_view ref) {
  const size_t colon = ref.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == ref.size()) return false;
  for (char c : ref.substr(0, colon)) {
    if (!lower_alnum(c) && c != '+' && c != '.' && c != '_' && c != '-') return false;
  }
  for (char c : ref.substr(colon + 1)) {
    const bool ok = lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '=' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Route refuse(unsigned status, std::string code, std::string message) {
  Route r;
  r.status = status;
  r.code = std::move(code);
  r.message = std::move(message);
  return r;
}

}  // namespace

bool valid_repository_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  size_t start = 0;
  for (;;) {
    const size_t slash = name.find('/', start);
    const std::string_view part = name.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!valid_name_component(part)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

std::string registry_error_json(std::string_view code, std::string_view message) {
  nlohmann::json error = {{"code", code}, {"message", message}, {"detail", nullptr}};
  nlohmann::json body = {{"errors", nlohmann::json::array({error})}};
  // Replacement characters rather than an exception for bytes that are not UTF-8.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Route route_request(std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") {
    return refuse(405, "UNSUPPORTED",
                  "this registry is read-only (the agent's images): only GET and HEAD");
  }
  if (path == "/v2/" || path == "/v2") {
    Route r;
    r.kind = RouteKind::base;
    return r;
  }
  constexpr std::string_view kPrefix = "/v2/";
  if (path.substr(0, kPrefix.size()) != kPrefix) {
    return refuse(404, "UNSUPPORTED", "not a distribution API path (/v2/...)");
  }
  const std::string_view rest = path.substr(kPrefix.size());
  const size_t last = rest.rfind('/');
  const size_t kind_start = last == std::string_view::npos ? last : rest.rfind('/', last - 1);
  if (last == std::string_view::npos || kind_start == std::string_view::npos || last == 0) {
    return refuse(404, "UNSUPPORTED",
                  "only /v2/<name>/manifests/<digest> and /v2/<name>/blobs/<digest>");
  }
  const std::string_view name = rest.substr(0, kind_start);
  const std::string_view kind = rest.substr(kind_start + 1, last - kind_start - 1);
  const std::string_view ref = rest.substr(last + 1);
  if (kind != "manifests" && kind != "blobs") {
    return refuse(404, "UNSUPPORTED",
                  "only manifests and blobs by digest are served (no tags list, no catalog)");
  }
  if (!valid_repository_name(name)) {
    return refuse(400, "NAME_INVALID", "invalid repository name");
  }
  const bool manifest = kind == "manifests";
  constexpr std::string_view kSha256 = "sha256:";
  if (ref.substr(0, kSha256.size()) == kSha256) {
    const std::string_view hex = ref.substr(kSha256.size());
    std::optional<std::string> raw;
    const bool lower = hex.find_first_of("ABCDEF") == std::string_view::npos;
    if (hex.size() == 64 && lower) raw = from_hex(hex);
    if (!raw) return refuse(400, "DIGEST_INVALID", "a sha256 digest is 64 lower-case hex digits");
    Route r;
    r.kind = manifest ? RouteKind::manifest : RouteKind::blob;
    r.digest = std::move(*raw);
    r.digest_text = std::string(ref);
    return r;
  }
  if (looks_like_digest(ref)) {
    return refuse(404, manifest ? "MANIFEST_UNKNOWN" : "BLOB_UNKNOWN",
                  "only sha256 digests are held");
  }
  if (manifest && looks_like_tag(ref)) {
    return refuse(404, "MANIFEST_UNKNOWN",
                  "tags are not served: every image the agent carries is pinned by digest");
  }
  return refuse(400, "DIGEST_INVALID", "the reference is not a digest");
}

}  // namespace sovdev::agent::images
