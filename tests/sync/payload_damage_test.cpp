// A cached payload, full or rebuilt from a delta, that no longer matches what was signed never
// reaches the target: it is checked completely before the first record goes out, dropped,
// reported with its stack@version, fetched again and then applied.
#include <zstd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "agent/payload_source.hpp"
#include "agent/trust_pin.hpp"
#include "common/hex.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/target/target.hpp"
#include "tests/sync/bundle_digest.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// Every file under `dir` and its bytes: equal before and after means nothing was written.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files[e.path().string()] = read_text(e.path().string());
  }
  return files;
}

std::string payload_file(const Fleet& fleet, const std::string& agent, const std::string& digest) {
  return (std::filesystem::path(fleet.agent_state(agent)) / "payloads" / to_hex(digest)).string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The first `limit` bytes `frame` decodes to; empty when the decoder fails before.
std::string decode_prefix(const std::string& frame, size_t limit) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, 27);
  std::string out(limit, '\0');
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  while (o.pos < o.size && in.pos < in.size) {
    const size_t rc = ZSTD_decompressStream(dctx.get(), &o, &in);
    if (ZSTD_isError(rc)) return {};
    if (rc == 0) break;
  }
  out.resize(o.pos);
  return out.size() == limit ? out : std::string();
}

// Flips one bit at or after byte `from` such that the start of the payload still decodes, to
// other bytes: the damage a streaming reader hands to the target before the checksum at the
// end can object (the case: byte 200 of a rebuilt payload).
void flip_decodable_bit(const std::string& path, size_t from) {
  const std::string original = read_bytes(path);
  constexpr size_t kPrefix = 1u << 20;  // past the first records
  const std::string clean = decode_prefix(original, kPrefix);
  REQUIRE(clean.size() == kPrefix);
  for (size_t at = from; at < from + 4096 && at < original.size(); at++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string damaged = original;
      damaged[at] = static_cast<char>(damaged[at] ^ (1 << bit));
      const std::string decoded = decode_prefix(damaged, kPrefix);
      if (!decoded.empty() && decoded != clean) {
        WARN("flipped bit " << bit << " of byte " << at << " of " << path);
        write_bytes(path, damaged);
        return;
      }
    }
  }
  FAIL("no bit after byte " << from << " leaves the payload decodable");
}

}  // namespace

TEST_CASE(
    "a damaged cached full payload is refused before any record reaches the target, then "
    "fetched again and applied",
    "[sync][damage]") {
  Fleet fleet;
  build_noise_upgrade(fleet);
  const std::string v1 = fleet.ws.dir / "v1.sdb";
  REQUIRE(fleet.publish(v1).exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a");
  auto first = fleet.sync_once("agent-a");
  INFO("agent: " << first.out << first.err);
  REQUIRE(first.exit_code == 0);
  const std::string target = fleet.agent_dir("agent-a");
  REQUIRE(applied_objects(target) == bundle_objects(v1, fleet.ws.trust));

  // Drift (every object gone from the folder) and damage in the payload's last chunk: a
  // reconcile that streamed would rewrite the first chunks' objects before the bad chunk.
  for (const auto& e : std::filesystem::directory_iterator(target)) {
    std::filesystem::remove_all(e.path());
  }
  const std::string payload = payload_file(fleet, "agent-a", bundle_digest(v1, fleet.ws.trust));
  std::string bytes = read_bytes(payload);
  REQUIRE(bytes.size() > 200000);
  bytes[bytes.size() - 100] = static_cast<char>(bytes[bytes.size() - 100] ^ 0x01);
  write_bytes(payload, bytes);
  const auto before = snapshot(target);

  auto damaged = fleet.sync_once("agent-a");
  INFO("agent: " << damaged.out << damaged.err);
  CHECK(damaged.exit_code != 0);
  CHECK_THAT(damaged.err, Catch::Contains("kp@1") && Catch::Contains("damaged") &&
                              Catch::Contains("nothing of it was applied"));
  CHECK(snapshot(target) == before);

  // Dropped, so the next pass fetches it whole from the hub and applies it.
  auto repaired = fleet.sync_once("agent-a");
  INFO("agent: " << repaired.out << repaired.err);
  REQUIRE(repaired.exit_code == 0);
  CHECK_THAT(repaired.err, Catch::Contains("fetched kp@1"));
  CHECK(applied_objects(target) == bundle_objects(v1, fleet.ws.trust));
  // The apply history keeps the report: what was damaged, and the apply that followed.
  auto status = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  CHECK_THAT(status.out, Catch::Contains("\"result\": \"damaged\""));
}

TEST_CASE(
    "a damaged payload rebuilt from a delta is refused before any record reaches the target, "
    "then fetched again and applied",
    "[sync][damage][delta]") {
  Fleet fleet;
  build_noise_upgrade(fleet);
  const std::string v1 = fleet.ws.dir / "v1.sdb";
  const std::string v2 = fleet.ws.dir / "v2.sdb";
  REQUIRE(fleet.publish(v1).exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a");
  REQUIRE(fleet.sync_once("agent-a").exit_code == 0);
  REQUIRE(fleet.publish_live(v2).exit_code == 0);
  auto upgraded = fleet.sync_once("agent-a");
  INFO("agent: " << upgraded.out << upgraded.err);
  REQUIRE(upgraded.exit_code == 0);
  REQUIRE_THAT(upgraded.err, Catch::Contains("as a delta"));
  const std::string target = fleet.agent_dir("agent-a");
  REQUIRE(applied_objects(target) == bundle_objects(v2, fleet.ws.trust));

  // The case: byte 200 of the rebuilt payload file (or the first bit after it whose
  // flip still decodes), then a reconcile, which used to write the altered ConfigMap.
  flip_decodable_bit(payload_file(fleet, "agent-a", bundle_digest(v2, fleet.ws.trust)), 200);
  const auto before = snapshot(target);

  auto damaged = fleet.sync_once("agent-a");
  INFO("agent: " << damaged.out << damaged.err);
  CHECK(damaged.exit_code != 0);
  CHECK_THAT(damaged.err, Catch::Contains("kp@2") && Catch::Contains("rebuilt from a delta") &&
                              Catch::Contains("damaged"));
  CHECK(snapshot(target) == before);

  auto repaired = fleet.sync_once("agent-a");
  INFO("agent: " << repaired.out << repaired.err);
  REQUIRE(repaired.exit_code == 0);
  CHECK_THAT(repaired.err, Catch::Contains("fetched kp@2"));
  CHECK(applied_objects(target) == bundle_objects(v2, fleet.ws.trust));
}

TEST_CASE("the verify pass costs a fraction of applying the edge-stack fixture",
          "[sync][damage][measure]") {
  Workspace ws;
  const std::string file = ws.dir / "edge.sdb";
  REQUIRE(ws.build(edge_stack("v1"), file, 1).exit_code == 0);
  REQUIRE(ws.import(file).exit_code == 0);
  auto db = store::open_agent_database(ws.state() + "/agent.db");
  REQUIRE(db);
  auto info = store::BundleCache(*db).find(bundle_digest(file, ws.trust));
  REQUIRE(info);
  REQUIRE(*info);
  auto trust = agent::trust_from_file(ws.trust);
  REQUIRE(trust);
  auto manifest = trust->verify_manifest((*info)->envelope, nullptr);
  REQUIRE(manifest);
  target::TargetConfig config;
  config.kind = target::TargetKind::dir;
  config.dir = ws.dir / "applied";
  std::filesystem::create_directories(config.dir);
  auto dir = target::make_target(config);
  REQUIRE(dir);

  using SteadyClock = std::chrono::steady_clock;
  double verify_ms = 1e9, apply_ms = 1e9;
  for (int round = 0; round < 5; round++) {
    auto t0 = SteadyClock::now();
    REQUIRE(agent::verify_cached_payload(*db, **info, *manifest));
    auto t1 = SteadyClock::now();
    const target::ApplyBegin begin{manifest->stack(), manifest->version(), "x", (*info)->digest};
    REQUIRE((*dir)->begin(begin));
    REQUIRE(agent::for_each_record(*db, **info, *manifest,
                                   [&](pb::ResourceRecord& r) { return (*dir)->apply(r); }));
    REQUIRE((*dir)->commit());
    auto t2 = SteadyClock::now();
    // A fresh folder each round: every object is written, as on a first apply.
    std::filesystem::remove_all(config.dir);
    std::filesystem::create_directories(config.dir);
    verify_ms = std::min(verify_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    apply_ms = std::min(apply_ms, std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  WARN("edge-stack (" << manifest->resource_count() << " objects, " << manifest->uncompressed_size()
                      << " bytes): verify pass " << verify_ms << " ms, apply to a dir target "
                      << apply_ms << " ms (best of 5)");
  CHECK(verify_ms > 0);
}
