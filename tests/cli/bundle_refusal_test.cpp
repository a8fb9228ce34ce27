#include <catch2/catch.hpp>

#include "bundles/bundle_file.hpp"
#include "hub/key_files.hpp"
#include "tests/cli/cli_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

struct Built {
  Workspace ws;
  std::string file;
  std::string bytes;
  uint32_t manifest_size = 0;
  Built() {
    file = ws.dir / "kp.sdb";
    // edge-stack's payload is ~31 KiB: 16 KiB chunks give the first and the last chunk apart.
    auto r = ws.build(edge_stack("v1"), file, 1, {"--chunk-size", "16384"});
    REQUIRE(r.exit_code == 0);
    bytes = read_text(file);
    manifest_size = *parse_bundle_header(bytes.substr(0, kBundleHeaderSize));
  }
  // Writes a damaged copy and returns the agent's answer to importing it.
  RunResult import_variant(const std::string& variant) {
    const std::string path = ws.dir / "damaged.sdb";
    write_text(path, variant);
    return ws.import(path);
  }
  std::string flipped(size_t offset) const {
    std::string copy = bytes;
    copy[offset] = static_cast<char>(copy[offset] ^ 0x01);
    return copy;
  }
};

void expect_refused(const RunResult& r, int code, const std::string& message) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == code);
  CHECK_THAT(r.err, Catch::Contains(message));
}

}  // namespace

TEST_CASE("a truncated bundle file is refused wherever it is cut", "[cli][refusal]") {
  Built b;
  expect_refused(b.import_variant(b.bytes.substr(0, 5)), 4, "truncated bundle file");
  expect_refused(b.import_variant(b.bytes.substr(0, kBundleHeaderSize + b.manifest_size / 2)), 4,
                 "ends inside the manifest");
  expect_refused(b.import_variant(b.bytes.substr(0, b.bytes.size() - 100)), 4,
                 "truncated bundle file");
  expect_refused(b.import_variant(b.bytes + "extra"), 4, "unexpected bytes after its payload");
}

TEST_CASE("a flipped byte in each region of the bundle file is refused", "[cli][refusal]") {
  Built b;
  const size_t manifest_start = kBundleHeaderSize;
  const size_t payload_start = kBundleHeaderSize + b.manifest_size;
  SECTION("magic") {
    expect_refused(b.import_variant(b.flipped(2)), 4, "bad magic");
  }
  SECTION("format version") {
    expect_refused(b.import_variant(b.flipped(7)), 4, "format 0 is not understood");
  }
  SECTION("manifest length") {
    auto r = b.import_variant(b.flipped(9));
    CHECK(r.exit_code != 0);
    CHECK_FALSE(r.err.empty());
  }
  SECTION("signed manifest body") {
    expect_refused(b.import_variant(b.flipped(manifest_start + 60)), 5,
                   "signature does not verify");
  }
  SECTION("signature") {
    expect_refused(b.import_variant(b.flipped(payload_start - 5)), 5, "signature does not verify");
  }
  SECTION("first payload chunk") {
    expect_refused(b.import_variant(b.flipped(payload_start + 100)), 5,
                   "chunk 0 of 2: hash mismatch");
  }
  SECTION("last payload byte") {
    expect_refused(b.import_variant(b.flipped(b.bytes.size() - 1)), 5,
                   "chunk 1 of 2: hash mismatch");
  }
  // Nothing of a refused bundle stays in the cache.
  auto status = run({agent_binary(), "status", "--state", b.ws.state(), "--json"});
  CHECK_THAT(status.out, !Catch::Contains("\"state\": \"verified\""));
  CHECK_THAT(status.out, !Catch::Contains("\"state\": \"partial\""));
}

TEST_CASE("a decompression bomb is refused while decompressing", "[cli][refusal]") {
  Workspace ws;
  auto key = hub::load_secret_key(ws.key("pub1"));
  REQUIRE(key);
  // 20 MB of text compressing to a few KB, declared as 64 KB.
  RawBundle bomb = make_raw_bundle(*key, 1, 2000, 10000, 64 * 1024);
  write_text(ws.dir / "bomb.sdb", bomb.bytes());
  expect_refused(ws.import(ws.dir / "bomb.sdb"), 10, "inflates past its declared size");
  expect_refused(ws.verify(ws.dir / "bomb.sdb"), 10, "inflates past its declared size");
}

TEST_CASE("a bundle signed by a key outside the trust root is refused", "[cli][refusal]") {
  Workspace ws;
  RawBundle foreign = make_raw_bundle(generate_key("intruder"), 1, 3, 10);
  write_text(ws.dir / "foreign.sdb", foreign.bytes());
  expect_refused(ws.import(ws.dir / "foreign.sdb"), 5, "unknown key");
}

TEST_CASE("an older version than the one cached is refused as a rollback", "[cli][refusal]") {
  Workspace ws;
  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "v1.sdb", 1).exit_code == 0);
  REQUIRE(ws.build(edge_stack("v2"), ws.dir / "v2.sdb", 2).exit_code == 0);
  REQUIRE(ws.import(ws.dir / "v2.sdb").exit_code == 0);
  expect_refused(ws.import(ws.dir / "v1.sdb"), 6, "rollback refused");
}

TEST_CASE("the same version with other content is refused", "[cli][refusal]") {
  Workspace ws;
  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "a.sdb", 3).exit_code == 0);
  REQUIRE(ws.build(edge_stack("v2"), ws.dir / "b.sdb", 3).exit_code == 0);
  REQUIRE(ws.import(ws.dir / "a.sdb").exit_code == 0);
  expect_refused(ws.import(ws.dir / "b.sdb"), 7, "never reuse a version");
  // The same file again is fine.
  auto again = ws.import(ws.dir / "a.sdb");
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("already cached"));
}

TEST_CASE("a bundle for another channel or architecture is refused", "[cli][refusal]") {
  Workspace ws;
  REQUIRE(ws.build(edge_stack("v1"), ws.dir / "a.sdb", 1).exit_code == 0);
  expect_refused(ws.import(ws.dir / "a.sdb", {"--channel", "prod"}), 9,
                 "this agent follows 'prod'");
  expect_refused(ws.import(ws.dir / "a.sdb", {"--arch", "riscv64"}), 9, "architecture riscv64");
}

TEST_CASE("invalid object names are refused at build with file and line", "[cli][refusal]") {
  Workspace ws;
  write_manifest(ws.dir / "src/ok.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n");
  write_manifest(ws.dir / "src/bad.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine2\n---\n"
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_DNS_Name\n");
  auto r = ws.build(ws.dir / "src", ws.dir / "x.sdb", 1);
  expect_refused(r, 4, "bad.yaml:9");
  CHECK_THAT(r.err, Catch::Contains("Not_A_DNS_Name"));
}

TEST_CASE("duplicate objects are refused at build naming both places", "[cli][refusal]") {
  Workspace ws;
  const std::string cm =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n  namespace: x\n";
  write_manifest(ws.dir / "src/a.yaml", cm);
  write_manifest(ws.dir / "src/sub/b.yaml", cm);
  auto r = ws.build(ws.dir / "src", ws.dir / "x.sdb", 1);
  expect_refused(r, 7, "a.yaml:1");
  CHECK_THAT(r.err, Catch::Contains("sub/b.yaml:1"));
}

TEST_CASE("malformed YAML is refused at build with file and line", "[cli][refusal]") {
  Workspace ws;
  write_manifest(ws.dir / "src/broken.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n");
  auto r = ws.build(ws.dir / "src", ws.dir / "x.sdb", 1);
  expect_refused(r, 4, "broken.yaml:");
}
