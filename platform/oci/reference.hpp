// Image references as Docker and containerd read them ("postgres:16", "ghcr.io/o/app@sha256:..."),
// with Docker's normalization: a first component without '.' or ':' (and not "localhost") is a
// path on docker.io, and a single name there is under library/.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::oci {

struct Reference {
  std::string registry;    // "docker.io", "ghcr.io", "127.0.0.1:5000", "localhost:5000"
  std::string repository;  // "library/postgres" (docker.io single names get library/)
  std::string tag;         // "latest" when neither tag nor digest is given
  std::string digest;      // raw 32 bytes, or empty

  std::string name() const;       // registry + "/" + repository
  std::string to_string() const;  // normalized, with tag and/or "@sha256:..."
  std::string pinned(std::string_view raw_digest) const;  // name() + "@sha256:<hex>"
  // What a source is asked for: "sha256:..." when the reference has a digest, else the tag.
  std::string tag_or_digest() const;
};

// Errc::invalid with a message naming what is wrong (uppercase, bad tag, digest algorithm...).
Expected<Reference> parse_reference(std::string_view text);

}  // namespace sovdev::oci
