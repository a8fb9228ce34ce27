#include "platform/oci/reference.hpp"

#include <vector>

#include "platform/oci/digest.hpp"

namespace sovdev::oci {
namespace {

constexpr size_t kMaxName = 255;  // Docker's NameTotalLengthMax
constexpr size_t kMaxReference = 1024;

bool is_lower_alnum(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}
bool is_alnum(char ch) {
  return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z');
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
bool valid_path_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (is_lower_alnum(c[i])) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) j++;
    const std::string_view sep = c.substr(i, j - i);
    const bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "_" || sep == "." || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]; then ":port" optional.
bool valid_domain(std::string_view d) {
  const size_t colon = d.find(':');
  std::string_view host = d.substr(0, colon);
  if (colon != std::string_view::npos) {
    const std::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos) {
      return false;
    }
  }
  if (host.empty()) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = host.find('.', start);
    const std::string_view part = host.substr(start, dot == host.npos ? host.npos : dot - start);
    if (part.empty() || !is_alnum(part.front()) || !is_alnum(part.back())) return false;
    for (const char ch : part) {
      if (!is_alnum(ch) && ch != '-') return false;
    }
    if (dot == host.npos) return true;
    start = dot + 1;
  }
}

// tag := [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); i++) {
    const char ch = t[i];
    const bool word = is_alnum(ch) || ch == '_';
    if (!word && (i == 0 || (ch != '.' && ch != '-'))) return false;
  }
  return true;
}

}  // namespace

std::string Reference::name() const {
  return registry + "/" + repository;
}

std::string Reference::to_string() const {
  std::string out = name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + format_digest(digest);
  return out;
}

std::string Reference::pinned(std::string_view raw_digest) const {
  return name() + "@" + format_digest(raw_digest);
}

std::string Reference::tag_or_digest() const {
  return digest.empty() ? tag : format_digest(digest);
}

Expected<Reference> parse_reference(std::string_view text) {
  const std::string shown(text.substr(0, 200));
  const auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid, "image reference '" + shown + "': " + why);
  };
  if (text.empty()) return bad("empty");
  if (text.size() > kMaxReference) return bad("longer than 1024 characters");
  Reference ref;
  std::string_view rest = text;
  if (const size_t at = rest.find('@'); at != rest.npos) {
    const std::string_view digest = rest.substr(at + 1);
    if (digest.substr(0, 7) != "sha256:") {
      return bad("only sha256 digests are supported (…@sha256:<64 hex digits>)");
    }
    auto raw = parse_digest(digest);
    if (!raw) return bad(raw.error().message);
    ref.digest = std::move(*raw);
    rest = rest.substr(0, at);
  }
  const size_t last_slash = rest.rfind('/');
  const size_t colon = rest.find(':', last_slash == rest.npos ? 0 : last_slash + 1);
  if (colon != rest.npos) {
    const std::string_view tag = rest.substr(colon + 1);
    if (!valid_tag(tag)) {
      return bad("tag '" + std::string(tag) +
                 "' is not valid (letters, digits, '_', '.', '-', at most 128, not starting with "
                 "'.' or '-')");
    }
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad("no image name");
  // Docker's rule for the registry: a first component with '.' or ':', "localhost", or with an
  // uppercase letter; anything else is a path on docker.io.
  std::string_view path = rest;
  const size_t slash = rest.find('/');
  if (slash != rest.npos) {
    const std::string_view first = rest.substr(0, slash);
    bool upper = false;
    for (const char ch : first) upper = upper || (ch >= 'A' && ch <= 'Z');
    if (first.find_first_of(".:") != first.npos || first == "localhost" || upper) {
      if (!valid_domain(first)) return bad("registry '" + std::string(first) + "' is not valid");
      ref.registry = std::string(first);
      path = rest.substr(slash + 1);
    }
  }
  if (ref.registry.empty() || ref.registry == "index.docker.io") ref.registry = "docker.io";
  if (path.empty()) return bad("no repository after the registry");
  for (const char ch : path) {
    if (ch >= 'A' && ch <= 'Z') return bad("repository name must be lowercase");
  }
  size_t start = 0;
  while (true) {
    const size_t next = path.find('/', start);
    const std::string_view part = path.substr(start, next == path.npos ? path.npos : next - start);
    if (!valid_path_component(part)) {
      return bad("repository component '" + std::string(part) +
                 "' is not valid (lowercase letters and digits, separated by '.', '_', '__' or "
                 "dashes)");
    }
    if (next == path.npos) break;
    start = next + 1;
  }
  if (path.size() == 64 && path.find_first_not_of("0123456789abcdef") == path.npos) {
    return bad("a 64-digit hex name is an image ID, not a repository");
  }
  ref.repository = std::string(path);
  if (ref.registry == "docker.io" && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (ref.name().size() > kMaxName) return bad("the name is longer than 255 characters");
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace sovdev::oci
