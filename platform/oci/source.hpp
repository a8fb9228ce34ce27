// Where images come from: a registry (v2 API over libcurl) or an OCI image layout on disk.
// Neither is trusted: every manifest and blob is checked against the digest it is asked by, and
// every answer is bounded before it is read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/oci/reference.hpp"

namespace sovdev::oci {

inline constexpr uint64_t kMaxJsonBytes = 4u << 20;  // an index, manifest or config

struct Fetched {
  std::string media_type;  // as the source says (Content-Type, or the layout's descriptor)
  std::string bytes;
  std::string digest;  // raw: the SHA-256 of `bytes`
};

using ByteSink = std::function<Status(std::string_view)>;

class ImageSource {  // a registry or an OCI image layout
 public:
  virtual ~ImageSource() = default;
  // An index or manifest by tag or by "sha256:..." (checked against that digest), at most 4 MiB.
  virtual Expected<Fetched> manifest(const Reference& ref, std::string_view tag_or_digest) = 0;
  // Streams a blob to `sink`, checking its size and SHA-256 as it streams; a mismatch is an
  // error after the last byte (Errc::signature), and the caller discards what the sink got.
  virtual Status blob(const Reference& ref, std::string_view raw_digest, uint64_t size,
                      const ByteSink& sink) = 0;
};

struct SourceRule {
  std::string prefix;
  std::string url;  // http://host:port, https://host[:port], oci:/path
};

// "PREFIX=URL", for --image-source.
Expected<SourceRule> parse_source_rule(std::string_view text);

// Longest prefix of ref.name() wins; none: the image's own registry over HTTPS (docker.io ->
// registry-1.docker.io). A registry is asked for ref.repository (a mirror keeps the path); an
// oci:DIR layout for the ref name "<name() minus prefix, leading '/' stripped>:<tag>" (just
// "<tag>" when nothing is left), or by digest.
Expected<std::unique_ptr<ImageSource>> open_source(const std::vector<SourceRule>& rules,
                                                   const Reference& ref);

// The two backends, for callers that know which they want.
Expected<std::unique_ptr<ImageSource>> open_registry(std::string_view base_url);
Expected<std::unique_ptr<ImageSource>> open_layout(std::string_view dir, std::string prefix);

}  // namespace sovdev::oci
