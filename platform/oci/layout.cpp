// An OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
// index.json names the images by "org.opencontainers.image.ref.name", blobs/sha256/<hex> holds
// the content. A layout is a folder anyone may have written: every blob is read bounded and
// checked against its digest, and a blob is opened only by a validated digest, never by a path
// taken from the layout.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/hex.hpp"
#include "platform/fs/unique_fd.hpp"
#include "platform/oci/checked.hpp"
#include "platform/oci/digest.hpp"
#include "platform/oci/media.hpp"
#include "platform/oci/source.hpp"

namespace sovdev::oci {
namespace {

constexpr size_t kLayoutChunk = 64 * 1024;

// Reads the file at `path` to `sink` in chunks, at most `limit` + 1 bytes (so a longer file is
// seen as longer without reading it all).
Status read_file_to(const std::string& path, uint64_t limit, const ByteSink& sink) {
  // O_NONBLOCK: a FIFO planted in the layout must not hang the reader (it is refused below).
  fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    return make_error(err == ENOENT ? Errc::not_found : Errc::io, path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(Errc::invalid, path + ": not a regular file");
  }
  std::string buf(kLayoutChunk, '\0');
  uint64_t total = 0;
  while (total <= limit) {
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::io, path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    SOVDEV_TRY(sink(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
  return {};
}

// A string member of a JSON object, or "" (never an exception for a wrong type).
std::string layout_string(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Expected<std::string> read_small(const std::string& path, uint64_t limit) {
  std::string out;
  SOVDEV_TRY(read_file_to(path, limit, [&](std::string_view b) -> Status {
    out.append(b);
    return {};
  }));
  if (out.size() > limit) {
    return make_error(Errc::too_large, path + ": larger than " + std::to_string(limit) + " bytes");
  }
  return out;
}

class LayoutSource final : public ImageSource {
 public:
  LayoutSource(std::string dir, std::string prefix)
      : dir_(std::move(dir)), prefix_(std::move(prefix)) {}

  Status open() {
    SOVDEV_ASSIGN(const std::string marker, read_small(dir_ + "/oci-layout", 4096));
    const auto m = nlohmann::json::parse(marker, nullptr, false);
    if (!m.is_object() || !m.contains("imageLayoutVersion") ||
        !m["imageLayoutVersion"].is_string()) {
      return make_error(Errc::invalid, dir_ + "/oci-layout: not an OCI layout marker");
    }
    SOVDEV_ASSIGN(const std::string index, read_small(dir_ + "/index.json", kMaxJsonBytes));
    index_ = nlohmann::json::parse(index, nullptr, false);
    if (!index_.is_object() || !index_.contains("manifests") || !index_["manifests"].is_array()) {
      return make_error(Errc::invalid, dir_ + "/index.json: not an OCI index");
    }
    return {};
  }

  Expected<Fetched> manifest(const Reference& ref, std::string_view tag_or_digest) override {
    const std::string where = "OCI layout " + dir_;
    std::string want_digest;
    std::string media_type;
    uint64_t size = 0;
    bool sized = false;
    if (tag_or_digest.rfind("sha256:", 0) == 0) {
      SOVDEV_ASSIGN(want_digest, parse_digest(tag_or_digest));
      for (const auto& d : index_["manifests"]) {
        if (layout_string(d, "digest") == tag_or_digest) media_type = layout_string(d, "mediaType");
      }
    } else {
      const std::string name = ref_name(ref, tag_or_digest);
      const nlohmann::json* found = nullptr;
      for (const auto& d : index_["manifests"]) {
        if (!d.is_object() || !d.contains("annotations") || !d["annotations"].is_object()) continue;
        const auto& a = d["annotations"];
        const auto it = a.find("org.opencontainers.image.ref.name");
        if (it == a.end() || !it->is_string() || it->get<std::string>() != name) continue;
        if (found != nullptr) {
          return make_error(Errc::invalid, where + ": two images are named '" + name + "'");
        }
        found = &d;
      }
      if (found == nullptr) {
        return make_error(Errc::not_found, where + " has no image named '" + name + "' (for " +
                                               ref.to_string() + ")");
      }
      const auto& d = *found;
      if (!d.contains("digest") || !d["digest"].is_string() || !d.contains("size") ||
          !d["size"].is_number_unsigned() || !d.contains("mediaType") ||
          !d["mediaType"].is_string()) {
        return make_error(Errc::invalid, where + ": the descriptor of '" + name +
                                             "' lacks its digest, size or media type");
      }
      auto digest = parse_digest(d["digest"].get<std::string>());
      if (!digest) return std::move(digest).error().context(where + ": '" + name + "'");
      want_digest = std::move(*digest);
      media_type = d["mediaType"].get<std::string>();
      size = d["size"].get<uint64_t>();
      sized = true;
      if (size > kMaxJsonBytes) {
        return make_error(Errc::too_large, where + ": '" + name + "' is a manifest of " +
                                               std::to_string(size) +
                                               " bytes, more than the 4 MiB allowed");
      }
    }
    SOVDEV_ASSIGN(std::string bytes, read_small(blob_path(want_digest), kMaxJsonBytes));
    if (sized && bytes.size() != size) {
      return make_error(Errc::signature, where + ": manifest " + format_digest(want_digest) +
                                             " is " + std::to_string(bytes.size()) +
                                             " bytes, its descriptor says " + std::to_string(size) +
                                             "; refused");
    }
    std::string got = sovdev::sha256(bytes);
    if (got != want_digest) {
      return make_error(Errc::signature, where + ": the manifest asked as " +
                                             format_digest(want_digest) + " hashes to " +
                                             format_digest(got) + "; refused");
    }
    if (media_type.empty()) media_type = media_type_of(bytes);
    return Fetched{std::move(media_type), std::move(bytes), std::move(got)};
  }

  Status blob(const Reference&, std::string_view raw_digest, uint64_t size,
              const ByteSink& sink) override {
    const std::string what = "OCI layout " + dir_ + ": blob " + format_digest(raw_digest);
    detail::CheckedStream stream(what, raw_digest, size, sink);
    SOVDEV_TRY(read_file_to(blob_path(raw_digest), size,
                            [&](std::string_view b) { return stream.write(b); }));
    return stream.finish();
  }

 private:
  // "<name() minus prefix, leading '/' stripped>:<tag>", or just the tag when nothing is left.
  std::string ref_name(const Reference& ref, std::string_view tag) const {
    std::string name = ref.name();
    if (name.compare(0, prefix_.size(), prefix_) == 0) name.erase(0, prefix_.size());
    while (!name.empty() && name.front() == '/') name.erase(0, 1);
    return name.empty() ? std::string(tag) : name + ":" + std::string(tag);
  }

  std::string blob_path(std::string_view raw_digest) const {
    return dir_ + "/blobs/sha256/" + to_hex(raw_digest);
  }

  // A blob asked by digest that index.json does not list: its own mediaType, else its shape.
  static std::string media_type_of(const std::string& bytes) {
    const auto j = nlohmann::json::parse(bytes, nullptr, false);
    if (!j.is_object()) return "";
    if (j.contains("mediaType") && j["mediaType"].is_string()) return j["mediaType"];
    if (j.contains("manifests")) return std::string(media::kOciIndex);
    if (j.contains("config")) return std::string(media::kOciManifest);
    return "";
  }

  std::string dir_;
  std::string prefix_;
  nlohmann::json index_;
};

}  // namespace

Expected<std::unique_ptr<ImageSource>> open_layout(std::string_view dir, std::string prefix) {
  auto source = std::make_unique<LayoutSource>(std::string(dir), std::move(prefix));
  if (auto opened = source->open(); !opened) {
    return std::move(opened).error().context("open image source oci:" + std::string(dir));
  }
  return std::unique_ptr<ImageSource>(std::move(source));
}

}  // namespace sovdev::oci
