// Test support for container images (#22): a real distribution registry (`docker-registry
// serve`, Debian's docker-registry) on a free loopback port with its storage in a temporary
// folder, and test images made with umoci in OCI layouts and pushed with skopeo. Failures throw
// std::runtime_error carrying the tool's own output. The tools come from scripts/setup.sh.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace sovdev::testing {

class Registry {
 public:
  // Starts the registry and returns once GET /v2/ answers.
  static std::unique_ptr<Registry> start();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  int port() const { return port_; }
  std::string host() const;  // 127.0.0.1:<port>, the registry part of an image reference
  std::string url() const;   // http://127.0.0.1:<port>
  // The file holding a blob (manifests included) in the registry's storage, by "sha256:<hex>"
  // or bare hex: what a test tampers with.
  std::string blob_file(const std::string& digest) const;
  void stop();  // SIGTERM, then SIGKILL if it has not exited within a few seconds
  std::string log() const;

 private:
  Registry() = default;
  bool launch();

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Child> child_;
};

// A file of a test image's layer.
struct ImageFile {
  std::string path;  // inside the root filesystem, e.g. "etc/app.conf"
  std::string content;
};

// An empty OCI layout (umoci init).
void make_layout(const std::string& layout);
// Makes `tag` in `layout`: from `from_tag` when given (sharing its layers) else from nothing,
// with the architecture `arch` (os linux), adding one gzip layer per entry of `layers`.
void make_image(const std::string& layout, const std::string& tag, const std::string& arch,
                const std::vector<std::vector<ImageFile>>& layers,
                const std::string& from_tag = "");
// Writes an OCI index over the images tagged `tags` in `layout` (each with its config's platform)
// and tags it `tag`. Returns the index digest, "sha256:<hex>".
std::string make_index(const std::string& layout, const std::string& tag,
                       const std::vector<std::string>& tags);
// The descriptor digest ("sha256:<hex>") `tag` names in the layout's index.json.
std::string layout_digest(const std::string& layout, const std::string& tag);
// A blob's file in the layout.
std::string layout_blob(const std::string& layout, const std::string& digest);
// skopeo copy --all of layout:tag to <registry>/<repo_tag> (the index and every manifest).
void push_image(const std::string& layout, const std::string& tag, const Registry& registry,
                const std::string& repo_tag);
// "sha256:<hex>" of a file (sha256sum).
std::string file_digest(const std::string& path);

// Bytes no compressor can shrink much (xorshift), the same for the same seed: layers whose
// size on the wire is their size.
std::string noise_bytes(size_t size, uint32_t seed);

}  // namespace sovdev::testing
