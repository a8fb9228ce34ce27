#include <catch2/catch.hpp>

#include <random>

#include "bundles/payload.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/verify.hpp"

using namespace sovdev;

namespace {

pb::ResourceRecord record(int i, size_t padding = 0) {
  pb::ResourceRecord r;
  r.set_api_version("v1");
  r.set_kind("ConfigMap");
  r.set_namespace_("default");
  r.set_name("cm-" + std::to_string(i));
  r.set_json("{\"data\":\"" + std::string(padding, static_cast<char>('a' + i % 26)) + "\"}");
  return r;
}

struct Built {
  std::string payload;
  pb::BundleManifest manifest;
};

Built build(int count, size_t padding, PayloadWriter::Options options = {}) {
  options.level = 3;
  Built b;
  auto writer = PayloadWriter::create(options, [&](std::string_view bytes) -> Status {
    b.payload.append(bytes);
    return {};
  });
  REQUIRE(writer);
  for (int i = 0; i < count; i++) REQUIRE(writer->add(record(i, padding)));
  auto summary = writer->finish();
  REQUIRE(summary);
  BundleInfo info{"sovdev", "edge", 1, {"arm64"}, "edge", "", 0};
  b.manifest = make_manifest(info, *summary, options);
  return b;
}

// Random bytes do not compress, so small inputs still span several chunks.
std::string noise(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

}  // namespace

TEST_CASE("a payload round-trips its records in order", "[payload]") {
  Built b = build(500, 100);
  REQUIRE(check_manifest_shape(b.manifest));
  CHECK(b.manifest.payload_size() == b.payload.size());
  auto records = read_all_records(b.manifest, b.payload);
  REQUIRE(records);
  REQUIRE(records->size() == 500);
  CHECK((*records)[0].name() == "cm-0");
  CHECK((*records)[499].name() == "cm-499");
  CHECK((*records)[7].json() == record(7, 100).json());
}

TEST_CASE("chunk hashes cover fixed-size pieces of the compressed payload", "[payload]") {
  PayloadWriter::Options opt;
  opt.chunk_size = 4096;
  Built b;
  opt.level = 1;
  auto writer = PayloadWriter::create(opt, [&](std::string_view bytes) -> Status {
    b.payload.append(bytes);
    return {};
  });
  REQUIRE(writer);
  for (int i = 0; i < 20; i++) {
    pb::ResourceRecord r = record(i);
    r.set_json(noise(3000, static_cast<unsigned>(i)));
    REQUIRE(writer->add(r));
  }
  auto summary = writer->finish();
  REQUIRE(summary);
  b.manifest = make_manifest({"s", "c", 1, {"amd64"}, "", "", 0}, *summary, opt);
  REQUIRE(b.manifest.chunk_sha256_size() > 5);
  std::vector<pb::ResourceRecord> seen;
  auto verifier = PayloadVerifier::create(b.manifest, [&](pb::ResourceRecord& r) -> Status {
    seen.push_back(r);
    return {};
  });
  REQUIRE(verifier);
  for (uint32_t i = 0; i < chunk_count(b.manifest); i++) {
    const std::string chunk = b.payload.substr(i * 4096, chunk_length(b.manifest, i));
    REQUIRE(verifier->add_chunk(i, chunk));
  }
  auto n = verifier->finish();
  REQUIRE(n);
  CHECK(*n == 20);
  CHECK(seen.size() == 20);
}

TEST_CASE("a chunk with a flipped byte fails its hash", "[payload]") {
  Built b = build(50, 2000);
  std::string chunk = b.payload.substr(0, chunk_length(b.manifest, 0));
  chunk[chunk.size() / 2] = static_cast<char>(chunk[chunk.size() / 2] ^ 1);
  auto r = verify_chunk(b.manifest, 0, chunk);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::signature);
  CHECK_THAT(r.error().message, Catch::Contains("chunk 0 of 1: hash mismatch"));
  CHECK_THAT(verify_chunk(b.manifest, 0, chunk.substr(1)).error().message,
             Catch::Contains("bytes, expected"));
}

TEST_CASE("a payload that inflates past its declared size is refused", "[payload]") {
  Built b = build(2000, 1000);  // ~2 MB of text compressing to a few KB
  pb::BundleManifest lying = b.manifest;
  lying.set_uncompressed_size(100000);
  auto r = read_all_records(lying, b.payload);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::too_large);
  CHECK_THAT(r.error().message, Catch::Contains("inflates past its declared size"));
}

TEST_CASE("a payload compressed with a larger window than declared is refused", "[payload]") {
  PayloadWriter::Options opt;
  opt.window_log = 22;
  Built b = build(10, 10, opt);
  pb::BundleManifest lying = b.manifest;
  lying.set_window_log(17);
  auto r = read_all_records(lying, b.payload);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("decompress payload"));
}

TEST_CASE("a payload cut short is refused", "[payload]") {
  Built b = build(100, 100);
  auto r = read_all_records(b.manifest, b.payload.substr(0, b.payload.size() - 3));
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("ends before its zstd frame"));
}

TEST_CASE("data after the payload's frame is refused", "[payload]") {
  Built b = build(10, 10);
  auto r = read_all_records(b.manifest, b.payload + b.payload);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("after the end of its zstd frame"));
}

TEST_CASE("a record larger than the declared maximum is refused while decoding", "[payload]") {
  Built b = build(3, 5000);
  pb::BundleManifest lying = b.manifest;
  lying.set_max_record_size(100);
  auto r = read_all_records(lying, b.payload);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("over the limit of 100"));
}

TEST_CASE("a changed uncompressed hash is detected", "[payload]") {
  Built b = build(10, 10);
  pb::BundleManifest lying = b.manifest;
  std::string h = lying.uncompressed_sha256();
  h[0] = static_cast<char>(h[0] ^ 1);
  lying.set_uncompressed_sha256(h);
  auto r = read_all_records(lying, b.payload);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("does not match its signed hash"));
}

TEST_CASE("an object over the size limit cannot be packed", "[payload]") {
  std::string sink;
  auto writer = PayloadWriter::create({}, [&](std::string_view b) -> Status {
    sink.append(b);
    return {};
  });
  REQUIRE(writer);
  auto r = writer->add(record(1, kMaxRecordSize + 10));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::too_large);
}
