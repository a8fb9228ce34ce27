// Test fixtures for the loopback registry: a small OCI image made here (uncompressed tar
// layers, configs with their diff_ids, one manifest per architecture, an index), each blob
// stored as a zstd file behind a BlobSource as the agent's blob store holds it, and the real
// clients (curl, skopeo, ctr) run against the server.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/images/blob_source.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

// A ustar archive of regular files (name → content), ending with its two zero blocks.
std::string make_tar(const std::vector<std::pair<std::string, std::string>>& files);

// "sha256:<hex>" of `bytes`, and its raw form.
std::string digest_text(const std::string& bytes);
std::string digest_raw(const std::string& bytes);

struct TestBlob {
  std::string media_type;
  std::string bytes;
  std::string digest() const { return digest_text(bytes); }
};

// Blobs by raw digest, each written as `<dir>/<hex>.zst`.
class TestBlobSource : public agent::images::BlobSource {
 public:
  explicit TestBlobSource(std::string dir) : dir_(std::move(dir)) {}
  // Compresses `blob` into the folder (zstd level 3, no frame checksum: the server's SHA-256
  // is what catches a damaged file) and returns the file's path.
  std::string add(const TestBlob& blob);
  // Registers a blob whose file, media type or size the test chose itself.
  void put(const std::string& raw_digest, agent::images::HeldBlob held);
  Expected<std::optional<agent::images::HeldBlob>> find(std::string_view digest) override;
  int calls() const { return calls_; }

 private:
  std::string dir_;
  std::map<std::string, agent::images::HeldBlob> held_;
  int calls_ = 0;
};

// An image for linux/amd64 and linux/arm64 sharing a base layer; each has a layer of its own.
struct TestImage {
  TestBlob index;
  std::vector<TestBlob> manifests;  // amd64, arm64
  std::vector<TestBlob> configs;
  std::vector<TestBlob> layers;  // base, amd64's, arm64's
  std::vector<const TestBlob*> all() const;
};
TestImage make_test_image();

// zstd of `bytes` (level, window log, checksum as asked) through libzstd.
std::string zstd_compress(const std::string& bytes, int level, int window_log, bool checksum);

struct CurlReply {
  int exit_code = -1;   // curl's own: 0 ok, 18 partial body, 52 empty reply, 56 receive error
  int status = 0;       // the HTTP status, 0 when none
  std::string headers;  // the last response's header block
  std::string body;
  std::string err;
  std::string header(const std::string& name) const;  // case-insensitive, "" when absent
};

// The absolute path of a program found on PATH ("" when absent): the test support runs
// programs with execv.
std::string find_program(const std::string& name);

// Runs the curl CLI (`extra` before the URL), body and headers through files in `tmp`.
CurlReply curl(const TempDir& tmp, const std::vector<std::string>& extra, const std::string& url);

}  // namespace sovdev::testing
