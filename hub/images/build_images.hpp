// The build's image step (docs/design-images.md): the images every rendered object names
// (hub/images/discover.hpp) resolved once each for the bundle's architectures, the objects
// pinned to what they resolved to, and the bundle manifest's `images` and `image_blobs` filled
// in. How an image is resolved (a registry or layout, the blobs stored in hub.db) is the
// ImageResolver's business: hub/images/oci_resolver.hpp in the program, a fake in tests.
//
// Driven by hub/build.cpp: add_object() for every object, resolve(), then pin() for each
// record as it is written, and fill() on the manifest.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub::images {

struct ResolvedImage {
  std::string pinned;        // e.g. "docker.io/library/postgres@sha256:<index hex>"
  std::string index_digest;  // raw
  // Every blob of the served form for the bundle's arches: the index (arch ""), then per arch
  // its manifest, config and layers, each with its wire digest, all held in hub.db.
  std::vector<pb::ImageBlob> blobs;
  uint64_t bytes_downloaded = 0;
  uint32_t layers_downloaded = 0, layers_reused = 0;
};

class ImageResolver {
 public:
  virtual ~ImageResolver() = default;
  // `reference` as written in the manifests; `arches` the bundle's (Debian names).
  [[nodiscard]] virtual Expected<ResolvedImage> resolve(const std::string& reference,
                                                        const std::vector<std::string>& arches) = 0;
};

// What the build prints for each image.
struct ImageReport {
  std::string reference;
  ResolvedImage resolved;  // blobs included
};

class BuildImages {
 public:
  explicit BuildImages(ImageResolver& resolver) : resolver_(resolver) {}

  // Notes the images of one object; `source` ("file:line") names it in messages.
  [[nodiscard]] Status add_object(std::string_view kind, std::string_view json,
                                  std::string_view source);
  // Resolves every image noted, each reference once, in the order first seen. An error names
  // the first object that uses the image.
  [[nodiscard]] Status resolve(const std::vector<std::string>& arches);
  // The object with its images pinned, or std::nullopt when it names none.
  [[nodiscard]] Expected<std::optional<std::string>> pin(std::string_view kind,
                                                         std::string_view json) const;
  // The manifest's images (one per reference as written) and image_blobs (each blob once per
  // arch, the first listing kept when images share one).
  void fill(pb::BundleManifest& manifest) const;

  const std::vector<ImageReport>& reports() const { return reports_; }
  size_t images() const { return order_.size(); }

 private:
  ImageResolver& resolver_;
  std::vector<std::string> order_;                // references, first seen first
  std::map<std::string, std::string> first_use_;  // reference -> "file:line: path"
  std::map<std::string, std::string> pinned_;     // reference -> pinned
  std::vector<ImageReport> reports_;              // in order_
};

}  // namespace sovdev::hub::images
