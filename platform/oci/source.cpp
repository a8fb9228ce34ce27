#include "platform/oci/source.hpp"

#include "platform/oci/checked.hpp"
#include "platform/oci/digest.hpp"

namespace sovdev::oci {
namespace detail {

Status CheckedStream::write(std::string_view bytes) {
  if (bytes.size() > size_ - received_) {
    return make_error(Errc::signature, what_ + ": more than the " + std::to_string(size_) +
                                           " bytes its descriptor says; refused");
  }
  received_ += bytes.size();
  hash_.update(bytes);
  return sink_(bytes);
}

Status CheckedStream::finish() {
  if (received_ != size_) {
    return make_error(Errc::signature, what_ + ": " + std::to_string(received_) +
                                           " bytes where its descriptor says " +
                                           std::to_string(size_) + "; refused");
  }
  const std::string got = hash_.finish();
  if (got != digest_) {
    return make_error(Errc::signature, what_ + ": its bytes hash to " + format_digest(got) +
                                           ", not the digest asked for; refused");
  }
  return {};
}

}  // namespace detail

Expected<SourceRule> parse_source_rule(std::string_view text) {
  const std::string shown(text.substr(0, 300));
  const auto bad = [&](const std::string& why) {
    return make_error(Errc::usage, "image source '" + shown + "': " + why +
                                       " (expected PREFIX=http://host:port, PREFIX=https://host "
                                       "or PREFIX=oci:/path/to/layout)");
  };
  const size_t eq = text.find('=');
  if (eq == text.npos) return bad("no '='");
  SourceRule rule{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
  if (rule.prefix.empty()) return bad("empty prefix");
  if (rule.prefix.find_first_of(" \t\r\n") != std::string::npos) return bad("space in the prefix");
  const std::string& url = rule.url;
  if (url.rfind("oci:", 0) == 0) {
    if (url.size() == 4) return bad("no layout folder after oci:");
    return rule;
  }
  std::string_view authority;
  std::string scheme;
  if (url.rfind("http://", 0) == 0) {
    scheme = "http://";
  } else if (url.rfind("https://", 0) == 0) {
    scheme = "https://";
  } else {
    return bad("the URL is neither http://, https:// nor oci:");
  }
  authority = std::string_view(url).substr(scheme.size());
  while (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
  if (authority.empty()) return bad("no host in the URL");
  if (authority.find_first_of("/?#@ \t") != std::string_view::npos) {
    return bad("the URL must be scheme://host[:port] only, without a path or user");
  }
  rule.url = scheme + std::string(authority);
  return rule;
}

Expected<std::unique_ptr<ImageSource>> open_source(const std::vector<SourceRule>& rules,
                                                   const Reference& ref) {
  const std::string name = ref.name();
  const SourceRule* best = nullptr;
  for (const auto& rule : rules) {
    if (name.compare(0, rule.prefix.size(), rule.prefix) == 0 &&
        (best == nullptr || rule.prefix.size() > best->prefix.size())) {
      best = &rule;
    }
  }
  if (best == nullptr) {
    const std::string host = ref.registry == "docker.io" ? "registry-1.docker.io" : ref.registry;
    return open_registry("https://" + host);
  }
  if (best->url.rfind("oci:", 0) == 0) {
    return open_layout(std::string_view(best->url).substr(4), best->prefix);
  }
  return open_registry(best->url);
}

}  // namespace sovdev::oci
