// A held blob read back: decoded in pieces, checked before its last bytes leave, and an error
// (the connection cut) for every way its file can be wrong.
#include <catch2/catch.hpp>

#include <random>

#include "agent/images/blob_stream.hpp"
#include "tests/images/oci_fixture.hpp"

using namespace sovdev;
using namespace sovdev::agent::images;
using namespace sovdev::testing;

namespace {

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

struct ReadOutcome {
  std::string bytes;  // what a client would have received
  std::optional<Error> error;
};

// Reads as the server does, in 64 KiB pieces, until the size is reached or an error.
ReadOutcome read_all(const HeldBlob& held, const std::string& digest) {
  ReadOutcome out;
  auto stream = BlobStream::open(held, digest);
  if (!stream) {
    out.error = stream.error();
    return out;
  }
  std::string buf(64 * 1024, '\0');
  while (out.bytes.size() < held.size) {
    auto got = stream->read(buf.data(), buf.size());
    if (!got) {
      out.error = got.error();
      return out;
    }
    if (*got == 0) break;
    out.bytes.append(buf.data(), *got);
  }
  return out;
}

HeldBlob held_file(const TempDir& tmp, const std::string& name, const std::string& zst,
                   size_t size) {
  write_text(tmp / name, zst);
  return {"application/octet-stream", size, tmp / name};
}

}  // namespace

TEST_CASE("a held blob streams back whole, in bounded pieces, across several zstd frames",
          "[images][stream]") {
  TempDir tmp;
  const std::string blob = random_bytes(300 * 1024, 1) + std::string(700 * 1024, 'x');
  // Two frames, one with a content checksum: a stream may be several concatenated frames.
  const std::string zst = zstd_compress(blob.substr(0, 500000), 3, 21, true) +
                          zstd_compress(blob.substr(500000), 19, 20, false);
  const ReadOutcome got = read_all(held_file(tmp, "b.zst", zst, blob.size()), digest_raw(blob));
  REQUIRE_FALSE(got.error);
  CHECK(got.bytes == blob);
}

TEST_CASE("a damaged blob file never gives its whole wrong body", "[images][stream]") {
  TempDir tmp;
  // Random bytes: zstd stores them raw, so a flipped byte decodes silently to a wrong byte and
  // only the SHA-256 can tell.
  const std::string blob = random_bytes(256 * 1024, 2);
  const std::string digest = digest_raw(blob);
  const std::string good = zstd_compress(blob, 3, 21, false);

  SECTION("a flipped byte inside a raw block") {
    std::string bad = good;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x20);
    const ReadOutcome got = read_all(held_file(tmp, "flip.zst", bad, blob.size()), digest);
    REQUIRE(got.error);
    CHECK_THAT(got.error->message, Catch::Contains("do not match the digest"));
    CHECK(got.bytes.size() < blob.size());
  }
  SECTION("a file cut short") {
    const ReadOutcome got = read_all(
        held_file(tmp, "cut.zst", good.substr(0, good.size() - 1000), blob.size()), digest);
    REQUIRE(got.error);
    CHECK_THAT(got.error->message, Catch::Contains("cut short"));
    CHECK(got.bytes.size() < blob.size());
  }
  SECTION("a blob shorter than its size says") {
    const ReadOutcome got = read_all(held_file(tmp, "short.zst", good, blob.size() + 1), digest);
    REQUIRE(got.error);
    CHECK_THAT(got.error->message, Catch::Contains("ends short"));
  }
  SECTION("a blob longer than its size says") {
    const std::string longer = zstd_compress(blob + "extra", 3, 21, false);
    const ReadOutcome got = read_all(held_file(tmp, "long.zst", longer, blob.size()), digest);
    REQUIRE(got.error);
    CHECK_THAT(got.error->message, Catch::Contains("more than the blob's size"));
    CHECK(got.bytes.size() < blob.size());
  }
  SECTION("garbage after the last frame") {
    const ReadOutcome got =
        read_all(held_file(tmp, "tail.zst", good + "garbage!", blob.size()), digest);
    REQUIRE(got.error);
    CHECK(got.bytes.size() < blob.size());
  }
  SECTION("another blob's file") {
    const std::string other = random_bytes(blob.size(), 3);
    const ReadOutcome got = read_all(
        held_file(tmp, "other.zst", zstd_compress(other, 3, 21, false), blob.size()), digest);
    REQUIRE(got.error);
    CHECK(got.bytes.size() < blob.size());
  }
  SECTION("not zstd at all") {
    const ReadOutcome got = read_all(held_file(tmp, "raw.zst", blob, blob.size()), digest);
    REQUIRE(got.error);
    CHECK(got.bytes.empty());
  }
  SECTION("a missing file") {
    auto stream = BlobStream::open({"x", blob.size(), tmp / "missing.zst"}, digest);
    REQUIRE_FALSE(stream);
    CHECK(stream.error().code == Errc::not_found);
  }
}

TEST_CASE("a blob compressed with a window over 2 MiB is refused, not decoded with more memory",
          "[images][stream]") {
  TempDir tmp;
  // Repeats 3 MiB apart: only a window of 4 MiB or more finds them, so the frame asks for it.
  const std::string part = random_bytes(3 * 1024 * 1024, 4);
  const std::string blob = part + part;
  const std::string zst = zstd_compress(blob, 3, 23, false);
  const ReadOutcome got = read_all(held_file(tmp, "wide.zst", zst, blob.size()), digest_raw(blob));
  REQUIRE(got.error);
  CHECK_THAT(got.error->message, Catch::Contains("damaged zstd stream"));
  CHECK(got.bytes.empty());
}
