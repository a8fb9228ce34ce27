// What a request to the loopback registry asks for, decided from its method and path alone:
// the distribution spec's pull routes by digest, or the spec's error to answer. Pure, so every
// refusal is tested without a socket.
#pragma once

#include <string>
#include <string_view>

namespace sovdev::agent::images {

enum class RouteKind { base, manifest, blob, error };

struct Route {
  RouteKind kind = RouteKind::error;
  std::string digest;       // manifest, blob: the raw 32-byte SHA-256
  std::string digest_text;  // "sha256:<hex>", as Docker-Content-Digest says it
  // error: the HTTP status and the spec's code (BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_INVALID,
  // DIGEST_INVALID, UNSUPPORTED) with a message for the operator reading a client's log.
  unsigned status = 0;
  std::string code;
  std::string message;
};

// `path` as the server saw it, percent-decoded and without the query (containerd adds
// `?ns=<registry>`, which says nothing the digest does not).
Route route_request(std::string_view method, std::string_view path);

// A repository name as the spec's grammar allows it: lower-case components separated by '/',
// each alphanumeric runs joined by '.', '_', '__' or '-'s; at most 255 characters.
bool valid_repository_name(std::string_view name);

// {"errors":[{"code":"...","message":"...","detail":null}]}
std::string registry_error_json(std::string_view code, std::string_view message);

}  // namespace sovdev::agent::images
