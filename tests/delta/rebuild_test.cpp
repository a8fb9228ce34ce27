// The agent's side: rebuilding a bundle from a delta against a cached one, reading it back, and
// refusing every delta that does not rebuild exactly what was signed.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "agent/delta_rebuild.hpp"
#include "agent/payload_source.hpp"
#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "common/hex.hpp"
#include "tests/delta/fixtures.hpp"

using namespace sovdev;
using namespace sovdev::delta_test;
using store::test::TempDir;

namespace {

// An agent holding edge-stack v1 (version 1) as a signed bundle, and a hub offering v2 (version
// 2) as a delta against it.
struct Upgrade {
  Trust trust;
  TempDir dir;
  std::string work = dir.file("work");
  std::string delta_file = dir.file("incoming.delta");
  store::Database db = must(store::open_agent_database(dir.file("agent.db")));
  Bundle old_bundle = make_bundle(records_of(kOld), 1, trust.publisher());
  Bundle new_bundle = make_bundle(records_of(kNew), 2, trust.publisher());
  store::BundleInfo base = cache_signed(db, old_bundle);

  Upgrade() { std::filesystem::create_directory(work); }

  // The delta the hub would send: made from `from` (normally the base's stream), naming
  // `base_digest`, its bytes written where the agent collects them.
  pb::DeltaManifest offer(std::string_view from, const Bundle& to, const std::string& base_digest,
                          uint32_t chunk_size = kDefaultChunkSize) {
    DeltaOptions options;
    options.level = 9;  // the tests check behaviour; the size is the benchmark's business
    const Delta delta = must(make_delta(from, to.stream, options));
    write_bytes(delta_file, delta.bytes);
    const auto manifest =
        make_delta_manifest(to.signed_manifest.digest, base_digest, delta, chunk_size);
    return must(
        verify_delta_manifest(trust.policy, sign_delta_manifest(manifest, {trust.publisher()})));
  }
  pb::DeltaManifest offer() { return offer(old_bundle.stream, new_bundle, base.digest); }

  Expected<agent::RebuildResult> rebuild(const Bundle& to, const store::BundleInfo& from,
                                         const pb::DeltaManifest& delta) {
    return agent::rebuild_from_delta(db, to.manifest, to.signed_manifest.envelope,
                                     to.signed_manifest.digest, from, delta, delta_file, work);
  }

  std::optional<store::BundleInfo> find(const Bundle& b) {
    store::BundleCache cache(db);
    return must(cache.find(b.signed_manifest.digest));
  }

  std::vector<pb::ResourceRecord> read_back(const Bundle& b) {
    const auto info = find(b);
    REQUIRE(info);
    std::vector<pb::ResourceRecord> records;
    REQUIRE_OK(agent::for_each_record(db, *info, b.manifest, [&](pb::ResourceRecord& r) -> Status {
      records.push_back(std::move(r));
      return {};
    }));
    return records;
  }
};

void check_same_records(const std::vector<pb::ResourceRecord>& got,
                        const std::vector<pb::ResourceRecord>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); i++) {
    INFO("record " << i << ": " << expected[i].kind() << "/" << expected[i].name());
    CHECK(got[i].SerializeAsString() == expected[i].SerializeAsString());
  }
}

// A refusal leaves the cache without the target and the work folder empty.
void check_refused_cleanly(Upgrade& u) {
  CHECK_FALSE(u.find(u.new_bundle));
  CHECK(entries(u.work).empty());
  CHECK(u.find(u.old_bundle)->state == store::BundleState::verified);
}

}  // namespace

TEST_CASE(
    "a bundle rebuilt from a delta reads back record for record identical to the signed original "
    "and leaves no temporary file") {
  Upgrade u;
  const auto delta = u.offer();
  const auto result = must(u.rebuild(u.new_bundle, u.base, delta));
  CHECK_FALSE(result.already_present);
  CHECK(result.records == u.new_bundle.manifest.resource_count());
  CHECK(result.uncompressed_size == u.new_bundle.stream.size());
  WARN("rebuilt " << result.uncompressed_size << " B of records from a " << delta.delta_size()
                  << " B delta; stored as " << result.chunk_count << " chunks, "
                  << result.payload_size << " B at zstd level " << kRebuiltLevel
                  << " (the signed payload: " << u.new_bundle.payload.size() << " B)");

  const auto info = u.find(u.new_bundle);
  REQUIRE(info);
  CHECK(info->state == store::BundleState::verified);
  CHECK(info->rebuilt);
  CHECK(info->chunk_count == result.chunk_count);
  CHECK(info->payload_size == result.payload_size);
  CHECK(info->envelope == u.new_bundle.signed_manifest.envelope);
  CHECK_FALSE(u.find(u.old_bundle)->rebuilt);

  check_same_records(u.read_back(u.new_bundle), u.new_bundle.records);
  check_same_records(u.read_back(u.old_bundle), u.old_bundle.records);
  CHECK(entries(u.work).empty());
  CHECK(std::filesystem::exists(u.delta_file));  // the caller's, left alone

  // The record stream written out again is byte for byte the hub's.
  const std::string out = u.dir.file("stream");
  REQUIRE_OK(agent::write_record_stream(u.db, *info, u.new_bundle.manifest, out));
  CHECK(read_text(out) == u.new_bundle.stream);
}

TEST_CASE(
    "a delta made against other content than the agent's base is refused by the signed "
    "uncompressed hash") {
  Upgrade u;
  // The agent's base differs from the hub's in one object that both versions share unchanged,
  // at the same length: the delta decodes, but copies the wrong bytes from the agent's base.
  std::vector<pb::ResourceRecord> skewed = u.old_bundle.records;
  auto shared = std::find_if(skewed.begin(), skewed.end(), [&](const pb::ResourceRecord& r) {
    const auto& next = u.new_bundle.records;
    return r.json().size() > 2000 &&
           std::any_of(next.begin(), next.end(), [&](const pb::ResourceRecord& n) {
             return n.SerializeAsString() == r.SerializeAsString();
           });
  });
  REQUIRE(shared != skewed.end());
  std::string json = shared->json();
  json[json.size() / 2] = json[json.size() / 2] == 'a' ? 'b' : 'a';
  shared->set_json(json);
  const Bundle agent_base = make_bundle(skewed, 1, u.trust.publisher(), 3);
  REQUIRE(agent_base.stream.size() == u.old_bundle.stream.size());
  store::BundleCache cache(u.db);
  REQUIRE(must(cache.remove(u.base.digest)));
  const auto base = cache_signed(u.db, agent_base);

  // Made from the hub's copy of version 1, but naming the bundle the agent holds.
  const auto delta = u.offer(u.old_bundle.stream, u.new_bundle, base.digest);
  auto refused = u.rebuild(u.new_bundle, base, delta);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::signature);
  CHECK_THAT(refused.error().message,
             Catch::Contains("does not match the signed manifest's uncompressed hash"));
  CHECK_THAT(refused.error().message, Catch::StartsWith("rebuild kp@2"));
  CHECK_FALSE(u.find(u.new_bundle));
  CHECK(entries(u.work).empty());
}

TEST_CASE("a delta naming another base than the one given is refused before any work") {
  Upgrade u;
  const auto delta = u.offer(u.old_bundle.stream, u.new_bundle, std::string(32, '\x07'));
  auto refused = u.rebuild(u.new_bundle, u.base, delta);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::invalid);
  CHECK_THAT(refused.error().message, Catch::Contains("the delta starts from bundle 070707"));
  check_refused_cleanly(u);
}

TEST_CASE("a delta file with one altered byte is refused by its chunk hash") {
  Upgrade u;
  const auto delta = u.offer(u.old_bundle.stream, u.new_bundle, u.base.digest, kMinChunkSize);
  std::string bytes = read_text(u.delta_file);
  REQUIRE(bytes.size() == delta.delta_size());
  bytes[bytes.size() - 3] ^= 0x20;
  write_bytes(u.delta_file, bytes);
  auto refused = u.rebuild(u.new_bundle, u.base, delta);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::signature);
  CHECK_THAT(refused.error().message, Catch::Contains("hash mismatch (the chunk was altered)"));
  check_refused_cleanly(u);

  write_bytes(u.delta_file, bytes.substr(0, bytes.size() - 1));  // and a short one
  auto truncated = u.rebuild(u.new_bundle, u.base, delta);
  REQUIRE_FALSE(truncated);
  CHECK_THAT(truncated.error().message, Catch::Contains("the delta file holds"));
  check_refused_cleanly(u);
}

TEST_CASE(
    "a rebuild refuses a delta window above the cap and a target without an uncompressed "
    "hash") {
  Upgrade u;
  auto delta = u.offer();
  delta.set_window_log(kMaxDeltaWindowLog + 1);
  auto too_wide = u.rebuild(u.new_bundle, u.base, delta);
  REQUIRE_FALSE(too_wide);
  CHECK(too_wide.error().code == Errc::too_large);
  CHECK_THAT(too_wide.error().message, Catch::Contains("over the cap of 2^27"));
  check_refused_cleanly(u);

  delta.set_window_log(kMaxDeltaWindowLog);
  Bundle unhashed = u.new_bundle;
  unhashed.manifest.clear_uncompressed_sha256();
  auto unverifiable = u.rebuild(unhashed, u.base, delta);
  REQUIRE_FALSE(unverifiable);
  CHECK_THAT(unverifiable.error().message, Catch::Contains("signs no uncompressed hash"));
  check_refused_cleanly(u);
}

TEST_CASE("a rebuilt bundle serves as the base of the next delta") {
  Upgrade u;
  REQUIRE(u.rebuild(u.new_bundle, u.base, u.offer()));
  // Version 3 goes back to the old objects: a delta from the rebuilt version 2.
  const Bundle third = make_bundle(records_of(kOld), 3, u.trust.publisher(), 3);
  const auto rebuilt_base = *u.find(u.new_bundle);
  const auto delta = u.offer(u.new_bundle.stream, third, rebuilt_base.digest);
  const auto result = must(u.rebuild(third, rebuilt_base, delta));
  CHECK(result.records == third.manifest.resource_count());
  check_same_records(u.read_back(third), third.records);
  CHECK(entries(u.work).empty());
}

TEST_CASE(
    "a started full download gives way to the rebuilt payload, and a verified target is "
    "not rebuilt again") {
  Upgrade u;
  store::BundleCache cache(u.db);
  store::BundleMeta meta;
  meta.digest = u.new_bundle.signed_manifest.digest;
  meta.stack = "kp";
  meta.channel = "edge";
  meta.version = 2;
  meta.envelope = u.new_bundle.signed_manifest.envelope;
  meta.chunk_count = static_cast<uint32_t>(u.new_bundle.manifest.chunk_sha256_size());
  meta.payload_size = u.new_bundle.manifest.payload_size();
  REQUIRE(must(cache.begin(meta)) == store::BundleState::partial);
  REQUIRE_OK(cache.put_chunk(meta.digest, 0,
                             std::string_view(u.new_bundle.payload).substr(0, kDefaultChunkSize)));

  const auto delta = u.offer();
  const auto first = must(u.rebuild(u.new_bundle, u.base, delta));
  CHECK_FALSE(first.already_present);
  CHECK(u.find(u.new_bundle)->rebuilt);
  check_same_records(u.read_back(u.new_bundle), u.new_bundle.records);

  const auto again = must(u.rebuild(u.new_bundle, u.base, delta));
  CHECK(again.already_present);
  CHECK(again.chunk_count == first.chunk_count);
  CHECK(entries(u.work).empty());
}

TEST_CASE("reading a cached bundle refuses a chunk altered on disk, signed or rebuilt") {
  Upgrade u;
  REQUIRE(u.rebuild(u.new_bundle, u.base, u.offer()));
  for (const Bundle* b : {&u.old_bundle, &u.new_bundle}) {
    INFO("version " << b->manifest.version());
    // Flip a bit inside the stored chunk, bypassing the cache's own checks: in the bundle's
    // payload file, or in its row for a bundle kept in the database.
    store::BundleCache cache(u.db);
    std::string chunk = must(cache.read_chunk(b->signed_manifest.digest, 0));
    chunk[chunk.size() / 2] ^= 0x01;
    const auto info = u.find(*b);
    if (info->chunk_size > 0) {
      const auto file = std::filesystem::path(u.db.path()).parent_path() / "payloads" /
                        to_hex(b->signed_manifest.digest);
      std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
      out.seekp(static_cast<std::streamoff>(chunk.size() / 2));
      out.put(chunk[chunk.size() / 2]);
      REQUIRE(out.good());
    } else {
      auto flip = must(u.db.prepare("UPDATE chunks SET data = ? WHERE digest = ? AND idx = 0"));
      REQUIRE_OK(flip.bind_all(store::Blob{chunk}, store::Blob{b->signed_manifest.digest}));
      REQUIRE_OK(flip.run());
    }
    auto refused = agent::for_each_record(u.db, *info, b->manifest,
                                          [](pb::ResourceRecord&) -> Status { return {}; });
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message, Catch::StartsWith("read bundle kp@"));
    auto not_written = agent::write_record_stream(u.db, *info, b->manifest, u.dir.file("out"));
    REQUIRE_FALSE(not_written);
    CHECK_FALSE(std::filesystem::exists(u.dir.file("out")));
  }
}

TEST_CASE("files a killed rebuild left behind are removed at start-up, and nothing else") {
  TempDir dir;
  const std::string work = dir.file("work");
  REQUIRE_OK(agent::remove_stale_rebuild_files(work));  // no folder yet: nothing to do
  std::filesystem::create_directory(work);
  write_bytes(work + "/.rebuild-base-1-2-3", "stale");
  write_bytes(work + "/.rebuild-payload.tmp-42", "stale");
  write_bytes(work + "/0123.delta", "the fetch's own file");
  REQUIRE_OK(agent::remove_stale_rebuild_files(work));
  CHECK(entries(work) == std::vector<std::string>{"0123.delta"});
}

TEST_CASE(
    "writing a record stream refuses a payload that inflates past its declared size and "
    "never replaces an existing file") {
  Upgrade u;
  REQUIRE(u.rebuild(u.new_bundle, u.base, u.offer()));
  const auto info = *u.find(u.new_bundle);
  auto smaller = u.new_bundle.manifest;
  smaller.set_uncompressed_size(smaller.uncompressed_size() - 1);
  const std::string out = u.dir.file("stream");
  auto bomb = agent::write_record_stream(u.db, info, smaller, out);
  REQUIRE_FALSE(bomb);
  CHECK(bomb.error().code == Errc::too_large);
  CHECK_THAT(bomb.error().message, Catch::Contains("inflates past its declared size"));
  CHECK_FALSE(std::filesystem::exists(out));

  write_bytes(out, "someone else's");
  auto taken = agent::write_record_stream(u.db, info, u.new_bundle.manifest, out);
  REQUIRE_FALSE(taken);
  CHECK(taken.error().code == Errc::conflict);
  CHECK(read_text(out) == "someone else's");
}
