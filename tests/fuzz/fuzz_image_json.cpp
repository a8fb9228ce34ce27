// What a registry or an OCI layout sends about an image (#22): the reference a stack names it by,
// digests, and the index, manifest and config JSON, as platform/oci reads them. Byte 0 picks the
// parser ((b - '0') % 7, so that the seeds are text): '0' reference, '1' digest, '2' OCI index,
// '3' Docker manifest list, '4' OCI manifest, '5' Docker manifest, '6' config; the rest is the
// text. Whatever is accepted must hold the bounds the converter relies on, and a reference or
// digest must read back the same once written out.
// Seeds (corpus/image_json/): files umoci 0.4.7 and skopeo 1.9.3 made (a layout's index.json,
// an OCI index as tests/support/registry.cpp writes one, manifests and a config),
// each behind its selector.
#include <cstdint>
#include <string>
#include <string_view>

#include "platform/oci/convert.hpp"
#include "platform/oci/digest.hpp"
#include "platform/oci/image_json.hpp"
#include "platform/oci/media.hpp"
#include "platform/oci/reference.hpp"
#include "platform/oci/source.hpp"
#include "tests/fuzz/fixtures.hpp"

using namespace sovdev;
namespace media = sovdev::oci::media;

namespace {

constexpr size_t kRawDigest = 32;

bool same(const oci::Reference& a, const oci::Reference& b) {
  return a.registry == b.registry && a.repository == b.repository && a.tag == b.tag &&
         a.digest == b.digest;
}

void reference(std::string_view text) {
  auto ref = oci::parse_reference(text);
  if (!ref) return;
  fuzz::expect(!ref->registry.empty() && !ref->repository.empty(), "a reference without a name");
  fuzz::expect(!ref->tag.empty() || !ref->digest.empty(), "a reference without tag or digest");
  fuzz::expect(ref->digest.empty() || ref->digest.size() == kRawDigest,
               "a reference digest that is not 32 bytes");
  fuzz::expect(ref->name().size() <= 255, "a reference name over 255 characters");
  const std::string written = ref->to_string();
  auto again = oci::parse_reference(written);
  fuzz::expect(again && same(*again, *ref),
               "reference '" + std::string(text) + "' reads back differently as '" + written + "'");
  const std::string digest(kRawDigest, '\x5a');
  auto pinned = oci::parse_reference(ref->pinned(digest));
  fuzz::expect(
      pinned && pinned->name() == ref->name() && pinned->digest == digest && pinned->tag.empty(),
      "the pinned form of '" + written + "' does not read back");
}

void digest(std::string_view text) {
  auto raw = oci::parse_digest(text);
  if (!raw) return;
  fuzz::expect(raw->size() == kRawDigest, "a digest that is not 32 bytes");
  fuzz::expect(oci::format_digest(*raw) == text, "a digest that writes back differently");
}

void descriptor(const oci::detail::Descriptor& d, uint64_t max_size) {
  fuzz::expect(!d.media_type.empty(), "a descriptor without a media type");
  fuzz::expect(d.digest.size() == kRawDigest, "a descriptor digest that is not 32 bytes");
  fuzz::expect(d.size <= max_size, "a descriptor over its size limit");
}

void index(std::string_view text, std::string_view media_type) {
  auto index = oci::detail::parse_index(text, media_type);
  if (!index) return;
  fuzz::expect(index->manifests.size() <= 1024, "an index over 1024 manifests");
  for (const auto& d : index->manifests) descriptor(d, oci::kMaxJsonBytes);
}

void manifest(std::string_view text, std::string_view media_type) {
  auto m = oci::detail::parse_manifest(text, media_type);
  if (!m) return;
  descriptor(m->config, oci::kMaxJsonBytes);
  fuzz::expect(media::is_config(m->config.media_type), "a manifest whose config is no config");
  fuzz::expect(m->layers.size() <= oci::kMaxLayers, "a manifest over the layer limit");
  for (const auto& d : m->layers) {
    descriptor(d, oci::kMaxLayerBytes);
    const auto kind = media::layer_compression(d.media_type);
    fuzz::expect(kind != media::Compression::unknown && kind != media::Compression::foreign,
                 "a manifest layer of a type the converter cannot carry");
  }
}

void config(std::string_view text) {
  auto c = oci::detail::parse_config(text);
  if (!c) return;
  fuzz::expect(c->diff_ids.size() <= oci::kMaxLayers, "a config over the layer limit");
  for (const auto& id : c->diff_ids) {
    fuzz::expect(id.size() == kRawDigest, "a diff_id that is not 32 bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  const uint8_t which = static_cast<uint8_t>(p.u8() - '0') % 7;
  const std::string_view text = p.rest();
  switch (which) {
    case 0: reference(text); break;
    case 1: digest(text); break;
    case 2: index(text, media::kOciIndex); break;
    case 3: index(text, media::kDockerList); break;
    case 4: manifest(text, media::kOciManifest); break;
    case 5: manifest(text, media::kDockerManifest); break;
    default: config(text); break;
  }
  return 0;
}
