// The wire form of image blobs and the image fields of a bundle manifest (bundles/blob_wire,
// bundles/image_rules): what the hub makes, the agent checks before anything counts.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "bundles/manifest_rules.hpp"

using namespace sovdev;

namespace {

// Half random, half repeated: compresses to about half, over several chunks.
std::string blob_bytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (size_t i = 0; i < size; i++) out[i] = (i / 4096) % 2 ? 'a' : static_cast<char>(rng());
  return out;
}

struct Encoded {
  pb::BlobManifest manifest;
  std::vector<std::string> chunks;
};

Encoded encode(const std::string& blob, uint32_t chunk_size = blobwire::kChunkSize) {
  Encoded out;
  blobwire::BlobEncoder::Options options;
  options.level = 3;
  options.chunk_size = chunk_size;
  auto encoder = blobwire::BlobEncoder::create(options, [&](uint32_t index, std::string_view c) {
    REQUIRE(index == out.chunks.size());
    out.chunks.emplace_back(c);
    return Status{};
  });
  REQUIRE(encoder);
  // In uneven pieces, as a layer arrives from a registry.
  for (size_t at = 0; at < blob.size(); at += 10007) {
    REQUIRE(encoder->write(std::string_view(blob).substr(at, 10007)));
  }
  auto manifest = encoder->finish();
  REQUIRE(manifest);
  out.manifest = *manifest;
  return out;
}

pb::ImageBlob listing(const pb::BlobManifest& m) {
  pb::ImageBlob b;
  b.set_digest(m.digest());
  b.set_size(m.size());
  b.set_media_type(std::string(kMediaLayer));
  b.set_arch("arm64");
  b.set_wire_digest(sha256(m.SerializeAsString()));
  b.set_wire_size(m.wire_size());
  b.set_repository("docker.io/library/postgres");
  b.set_layer(1);
  return b;
}

Status decode(const pb::BlobManifest& m, const std::string& wire, std::string& out) {
  auto decoder = blobwire::BlobDecoder::create(m.digest(), m.size(), [&](std::string_view b) {
    out.append(b);
    return Status{};
  });
  if (!decoder) return decoder.error();
  for (size_t at = 0; at < wire.size(); at += 777) {
    SOVDEV_TRY(decoder->write(std::string_view(wire).substr(at, 777)));
  }
  return decoder->finish();
}

}  // namespace

TEST_CASE("a blob's wire form decodes back to the blob and each chunk matches its hash",
          "[blobwire]") {
  const std::string blob = blob_bytes(600 * 1024, 1);
  const Encoded e = encode(blob);
  REQUIRE(e.chunks.size() == blobwire::chunk_count(e.manifest));
  REQUIRE(e.chunks.size() > 3);
  CHECK(e.manifest.digest() == sha256(blob));
  CHECK(e.manifest.size() == blob.size());
  std::string wire;
  for (uint32_t i = 0; i < e.chunks.size(); i++) {
    CHECK(blobwire::chunk_matches(e.manifest, i, e.chunks[i]));
    wire += e.chunks[i];
  }
  CHECK(wire.size() == e.manifest.wire_size());
  std::string back;
  REQUIRE(decode(e.manifest, wire, back));
  CHECK(back == blob);
}

TEST_CASE("a changed, short or long chunk does not match", "[blobwire]") {
  const Encoded e = encode(blob_bytes(300 * 1024, 2));
  std::string changed = e.chunks[1];
  changed[100] ^= 1;
  CHECK_FALSE(blobwire::chunk_matches(e.manifest, 1, changed));
  CHECK_FALSE(blobwire::chunk_matches(e.manifest, 1, e.chunks[1].substr(1)));
  CHECK_FALSE(blobwire::chunk_matches(e.manifest, 1, e.chunks[1] + "x"));
  CHECK_FALSE(blobwire::chunk_matches(e.manifest, 0, e.chunks[1]));
  CHECK_FALSE(blobwire::chunk_matches(e.manifest, 9999, e.chunks[1]));
}

TEST_CASE("the decoder refuses a stream that is truncated, too long or of another blob",
          "[blobwire]") {
  const std::string blob = blob_bytes(200 * 1024, 3);
  const Encoded e = encode(blob);
  std::string wire;
  for (const auto& c : e.chunks) wire += c;
  std::string out;
  CHECK(decode(e.manifest, wire.substr(0, wire.size() - 10), out).error().code == Errc::invalid);

  pb::BlobManifest shorter = e.manifest;
  shorter.set_size(blob.size() - 1);
  out.clear();
  CHECK(decode(shorter, wire, out).error().code == Errc::too_large);

  pb::BlobManifest other = e.manifest;
  other.set_digest(sha256("another blob"));
  out.clear();
  CHECK(decode(other, wire, out).error().code == Errc::signature);

  out.clear();
  CHECK(decode(e.manifest, wire + wire, out).error().code != Errc::internal);
}

TEST_CASE("a blob manifest counts only when it is the one the bundle names", "[blobwire]") {
  const Encoded e = encode(blob_bytes(200 * 1024, 4));
  const pb::ImageBlob listed = listing(e.manifest);
  const std::string bytes = e.manifest.SerializeAsString();
  REQUIRE(blobwire::parse_blob_manifest(bytes, listed));

  pb::BlobManifest forged = e.manifest;
  forged.set_chunk_sha256(0, sha256("x"));
  CHECK(blobwire::parse_blob_manifest(forged.SerializeAsString(), listed).error().code ==
        Errc::signature);

  // Signed as listed, yet disagreeing with the listing: refused all the same.
  pb::ImageBlob bigger = listed;
  bigger.set_size(listed.size() + 1);
  CHECK(blobwire::parse_blob_manifest(bytes, bigger).error().code == Errc::invalid);

  pb::BlobManifest wide = e.manifest;
  wide.set_window_log(27);
  pb::ImageBlob wide_listed = listed;
  wide_listed.set_wire_digest(sha256(wide.SerializeAsString()));
  CHECK(blobwire::parse_blob_manifest(wide.SerializeAsString(), wide_listed).error().code ==
        Errc::invalid);
}

TEST_CASE("chunks grow past 64 KiB only for a blob that would pass the chunk limit", "[blobwire]") {
  CHECK(blobwire::chunk_size_for(0) == blobwire::kChunkSize);
  CHECK(blobwire::chunk_size_for(uint64_t{1} << 30) == blobwire::kChunkSize);
  const uint32_t big = blobwire::chunk_size_for(uint64_t{8} << 30);
  CHECK(big > blobwire::kChunkSize);
  CHECK(big % 4096 == 0);
  CHECK((uint64_t{8} << 30) / big < blobwire::kMaxChunks);
}

TEST_CASE("a bundle manifest's image fields are checked before it counts", "[blobwire]") {
  pb::BundleManifest m;
  m.add_arch("arm64");
  const Encoded e = encode(blob_bytes(100 * 1024, 5));
  pb::ImageBlob layer = listing(e.manifest);
  pb::ImageBlob index = layer;
  index.set_digest(sha256("index"));
  index.set_media_type(std::string(kMediaIndex));
  index.set_arch("");
  index.set_layer(0);
  index.set_repository("");
  *m.add_image_blobs() = index;
  *m.add_image_blobs() = layer;
  pb::ImageRef* ref = m.add_images();
  ref->set_reference("postgres:16");
  ref->set_pinned("docker.io/library/postgres@sha256:...");
  ref->set_index_digest(index.digest());
  REQUIRE(check_image_fields(m));
  CHECK(blobs_for_arch(m, "arm64").size() == 2);
  CHECK(blobs_for_arch(m, "amd64").size() == 1);
  CHECK(find_image_blob(m, layer.digest()) != nullptr);
  CHECK(find_image_blob(m, sha256("nothing")) == nullptr);
  {
    // A layer two arches share is listed for each.
    pb::BundleManifest both = m;
    both.add_arch("amd64");
    pb::ImageBlob shared = layer;
    shared.set_arch("amd64");
    *both.add_image_blobs() = shared;
    CHECK(check_image_fields(both));
    CHECK(blobs_for_arch(both, "amd64").size() == 2);
  }

  SECTION("a blob for an arch the bundle is not for") {
    m.mutable_image_blobs(1)->set_arch("amd64");
  }
  SECTION("a blob listed twice") {
    *m.add_image_blobs() = layer;
  }
  SECTION("a media type the agent does not serve") {
    m.mutable_image_blobs(1)->set_media_type("application/vnd.oci.image.layer.v1.tar+gzip");
  }
  SECTION("a layer without its place") {
    m.mutable_image_blobs(1)->set_layer(0);
  }
  SECTION("an image whose index is not listed") {
    m.mutable_images(0)->set_index_digest("x");
  }
  SECTION("a short wire digest") {
    m.mutable_image_blobs(1)->set_wire_digest("short");
  }
  SECTION("a JSON blob over 4 MiB") {
    m.mutable_image_blobs(0)->set_size(kMaxImageJsonBytes + 1);
  }
  CHECK(check_image_fields(m).error().code == Errc::invalid);
}
