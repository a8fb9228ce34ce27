// Media types of the OCI image spec and Docker's image manifest v2, and what they mean to us.
#pragma once

#include <string_view>

namespace sovdev::oci::media {

inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerSchema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// What a registry is told we accept: the four current types, and schema1 so that an image
// still in it gets a clear refusal rather than a 404.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, "
    "application/vnd.docker.distribution.manifest.v1+json;q=0.1";

inline bool is_index(std::string_view t) {
  return t == kOciIndex || t == kDockerList;
}
inline bool is_manifest(std::string_view t) {
  return t == kOciManifest || t == kDockerManifest;
}
inline bool is_schema1(std::string_view t) {
  return t == kDockerSchema1 || t == kDockerSchema1Signed;
}
inline bool is_config(std::string_view t) {
  return t == kOciConfig || t == kDockerConfig;
}

enum class Compression { none, gzip, zstd, foreign, unknown };

inline Compression layer_compression(std::string_view t) {
  if (t == kOciLayerTar || t == "application/vnd.docker.image.rootfs.diff.tar") {
    return Compression::none;
  }
  if (t == "application/vnd.oci.image.layer.v1.tar+gzip" ||
      t == "application/vnd.docker.image.rootfs.diff.tar.gzip") {
    return Compression::gzip;
  }
  if (t == "application/vnd.oci.image.layer.v1.tar+zstd" ||
      t == "application/vnd.docker.image.rootfs.diff.tar.zstd") {
    return Compression::zstd;
  }
  if (t.find("nondistributable") != t.npos || t.find("foreign") != t.npos) {
    return Compression::foreign;
  }
  return Compression::unknown;
}

}  // namespace sovdev::oci::media
