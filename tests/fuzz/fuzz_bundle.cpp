// A bundle file (.sdb) as an agent reads it from a USB stick: header, signed manifest verified
// against the pinned trust root, then the payload chunk by chunk against the signed hashes.
// The same bytes also go through the real file reader (from a memfd: nothing touches disk), and
// both readings must agree. Past a mutated signature this explores little: fuzz_payload covers
// what follows a valid signature.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bundles/bundle_file.hpp"
#include "bundles/verify.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "tests/fuzz/fixtures.hpp"

using namespace sovdev;

namespace {

struct Verdict {
  bool manifest_ok = false;  // the header and signed manifest verified and the size matches
  bool payload_ok = false;
};

// The agent's path (agent/import.cpp verify_bundle_file), over bytes in memory.
Verdict verify_in_memory(std::string_view file) {
  Verdict v;
  auto size = parse_bundle_header(file.substr(0, kBundleHeaderSize));
  if (!size) return v;
  std::string_view rest = file.substr(kBundleHeaderSize);
  if (rest.size() < *size) return v;
  const std::string_view envelope = rest.substr(0, *size);
  rest.remove_prefix(*size);

  std::string digest;
  auto manifest = fuzz::trust_v1().verify_manifest(envelope, &digest);
  if (!manifest) return v;
  const pb::BundleManifest& m = *manifest;
  fuzz::expect(digest.size() == kDigestSize, "manifest digest is not 32 bytes");
  (void)check_installable(m, digest, InstallTarget{}, std::nullopt, std::nullopt);
  if (rest.size() != m.payload_size()) return v;
  v.manifest_ok = true;

  auto verifier = PayloadVerifier::create(m, [](pb::ResourceRecord& r) -> Status {
    fuzz::expect(!r.kind().empty() && !r.name().empty(), "record handed out without a name");
    return {};
  });
  if (!verifier) return v;
  for (uint32_t i = 0; i < chunk_count(m); i++) {
    const uint64_t length = chunk_length(m, i);
    fuzz::expect(length > 0 && length <= rest.size(), "chunk length outside the payload");
    if (!verifier->add_chunk(i, rest.substr(0, length))) return v;
    rest.remove_prefix(length);
  }
  v.payload_ok = verifier->finish().has_value();
  return v;
}

// The same through fs::BundleFileReader, the way the agent reads a file.
Verdict verify_with_reader(std::string_view file) {
  Verdict v;
  const int fd = memfd_create("fuzz-bundle", MFD_CLOEXEC);
  if (fd < 0) fuzz::fail("memfd_create failed");
  for (std::string_view left = file; !left.empty();) {
    const ssize_t n = ::write(fd, left.data(), left.size());
    if (n <= 0) fuzz::fail("write to memfd failed");
    left.remove_prefix(static_cast<size_t>(n));
  }
  auto reader = fs::BundleFileReader::open("/proc/self/fd/" + std::to_string(fd));
  ::close(fd);  // the reader opened its own descriptor
  if (!reader) return v;
  std::string digest;
  auto manifest = fuzz::trust_v1().verify_manifest(reader->manifest_envelope(), &digest);
  if (!manifest || !reader->check_size(*manifest)) return v;
  v.manifest_ok = true;
  const pb::BundleManifest& m = *manifest;
  auto verifier = PayloadVerifier::create(m, [](pb::ResourceRecord&) -> Status { return {}; });
  if (!verifier) return v;
  for (uint32_t i = 0; i < chunk_count(m); i++) {
    auto chunk = reader->next_chunk(m);
    if (!chunk || !verifier->add_chunk(i, *chunk)) return v;
  }
  fuzz::expect(!reader->next_chunk(m), "the reader reads past the last chunk");
  v.payload_ok = verifier->finish().has_value();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  const Verdict memory = verify_in_memory(file);
  const Verdict reader = verify_with_reader(file);
  fuzz::expect(memory.manifest_ok == reader.manifest_ok,
               "file reader and in-memory reading disagree on the manifest");
  fuzz::expect(memory.payload_ok == reader.payload_ok,
               "file reader and in-memory reading disagree on the payload");
  return 0;
}
