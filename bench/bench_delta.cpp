// bench_delta: a small upgrade's wire bytes when the agent fetches it as a delta (every MQTT
// packet on the agent's link, from the catalog naming the new version to the rebuilt bundle,
// the real hub and agent code over an in-process broker), against `zstd -19 --patch-from` of
// the same YAML: on the in-repo upgrade pair (tests/fixtures/edge-stack v1 -> v2) and, when
// the shared folder holds it, the real kube-prometheus upgrade (81570cb1 -> f214874c), which
// also sets the delta against its full bundle. Then the agent's private memory while it
// rebuilds a bundle from a delta, against the same program idle and reading a full bundle
// from its cache. Exit 0 when every bar holds, 1 when one is missed, 2 when the benchmark
// itself could not run.
//
// The rebuild runs in a child process (this program again, `child rebuild DIR`), so its memory
// is sampled from outside exactly as bench_import samples `sovdev-agent import`.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/delta_rebuild.hpp"
#include "agent/payload_source.hpp"
#include "bench/bench_data.hpp"
#include "bench/bench_support.hpp"
#include "bundles/bundle_file.hpp"
#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "platform/fs/files.hpp"
#include "platform/store/agent_cache.hpp"
#include "tests/delta/loopback_fetch.hpp"

namespace sovdev::bench {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMemoryBar = 12 * kMiB;
constexpr uint64_t kFlatBar = 2 * kMiB;
constexpr double kSizeBarPercent = 2.0;
// A small upgrade's wire bytes may exceed `zstd -19 --patch-from` of its YAML by this much:
// what the signatures, the manifest and MQTT's framing cost.
constexpr uint64_t kWireOverheadBar = 1024;
// The larger case: both streams together stay under the 128 MiB window a delta may use.
constexpr uint64_t kBigContent = 48 * kMiB;
constexpr const char* kOld = "81570cb1";
constexpr const char* kNew = "f214874c";

template <class T>
T check(Expected<T> value, const std::string& what) {
  if (!value) throw std::runtime_error(what + ": " + value.error().message);
  return std::move(value).value();
}

void check(const Status& status, const std::string& what) {
  if (!status) throw std::runtime_error(what + ": " + status.error().message);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void write_text(const std::string& path, std::string_view bytes) {
  check(fs::write_file_atomic(path, bytes), "write " + path);
}

// ------------------------------------------------------------------------------- bundles

struct Built {
  std::string stream;   // the record stream
  std::string payload;  // compressed, as signed
  pb::BundleManifest manifest;
  SignedManifest signed_manifest;
  uint64_t records = 0;
  uint64_t file_size() const {
    return kBundleHeaderSize + signed_manifest.envelope.size() + payload.size();
  }
};

// `metadata.name` renamed with the record, so each copy is a distinct, consistent object. Keys
// are sorted in the compact JSON, so the first "name" after "metadata" is the object's.
std::string renamed_json(const std::string& json, const std::string& name,
                         const std::string& suffix) {
  const size_t meta = json.find("\"metadata\":{");
  const std::string field = "\"name\":\"" + name + "\"";
  const size_t at = meta == std::string::npos ? meta : json.find(field, meta);
  if (at == std::string::npos) return json;
  std::string out = json;
  out.insert(at + field.size() - 1, suffix);
  return out;
}

// The objects written as the hub packs them (PayloadWriter at `level`, default window and chunk
// size), copied with renamed names until the records reach `content` bytes (0: once).
Built build(const std::vector<yaml::Object>& objects, uint64_t version, const SecretKey& key,
            int level, uint64_t content = 0) {
  Built b;
  PayloadWriter::Options options;
  options.level = level;
  auto writer = check(PayloadWriter::create(options,
                                            [&](std::string_view bytes) -> Status {
                                              b.payload.append(bytes);
                                              return {};
                                            }),
                      "create payload writer");
  uint64_t written = 0;
  for (uint64_t copy = 0; copy == 0 || written < content; copy++) {
    const std::string suffix = copy == 0 ? "" : "-c" + std::to_string(copy);
    for (const auto& o : objects) {
      if (copy > 0 && written >= content) break;
      pb::ResourceRecord r;
      r.set_api_version(o.api_version);
      r.set_kind(o.kind);
      r.set_namespace_(o.namespace_);
      r.set_name(o.name + suffix);
      r.set_json(suffix.empty() ? o.json : renamed_json(o.json, o.name, suffix));
      r.set_source(o.source);
      check(writer.add(r), "add " + o.kind + "/" + o.name);
      uint64_t size = r.ByteSizeLong();
      written += size;
      while (size >= 0x80) {
        b.stream.push_back(static_cast<char>((size & 0x7f) | 0x80));
        size >>= 7;
      }
      b.stream.push_back(static_cast<char>(size));
      b.stream += r.SerializeAsString();
      b.records++;
    }
  }
  const PayloadSummary summary = check(writer.finish(), "finish payload");
  if (sha256(b.stream) != summary.uncompressed_sha256) {
    throw std::runtime_error("the record stream differs from what PayloadWriter hashed");
  }
  const BundleInfo info{"kp", "edge", version, {"amd64", "arm64"}, "edge", "", 0};
  b.manifest = make_manifest(info, summary, options);
  check(check_manifest_shape(b.manifest), "manifest");
  b.signed_manifest = sign_manifest(b.manifest, {key});
  return b;
}

// f214874c with one container image's tag changed: the smallest real release.
std::vector<yaml::Object> one_tag_changed(std::vector<yaml::Object> objects) {
  for (auto& o : objects) {
    const size_t image = o.json.find("\"image\":\"");
    if (image == std::string::npos) continue;
    const size_t colon = o.json.find(':', image + 9);
    const size_t end = o.json.find('"', image + 9);
    if (colon == std::string::npos || colon > end) continue;
    o.json.replace(colon + 1, end - colon - 1, "v99.0.1");
    note("one-tag change: " + o.kind + "/" + o.name + " now runs " +
         o.json.substr(image + 9, colon - image - 9) + ":v99.0.1");
    return objects;
  }
  throw std::runtime_error("no container image found to change");
}

// ------------------------------------------------------------------------------- the child

// What the agent does once the delta's chunks are collected: rebuild, then read the bundle back
// record by record as an apply would. Files come from `dir` (see prepare()).
int child_rebuild(const std::string& dir) {
  auto db = check(store::open_agent_database(dir + "/run.db"), "open the agent database");
  const auto trust = check(TrustPolicy::from_initial(read_text(dir + "/trust.root")), "trust");
  const std::string envelope = read_text(dir + "/target.envelope");
  std::string digest;
  const auto target = check(trust.verify_manifest(envelope, &digest), "target manifest");
  const auto delta =
      check(verify_delta_manifest(trust, read_text(dir + "/delta.envelope")), "delta manifest");
  store::BundleCache cache(db);
  const auto base = check(cache.find(delta.base_digest()), "find the base");
  if (!base) throw std::runtime_error("the base bundle is not cached");
  const auto result = check(agent::rebuild_from_delta(db, target, envelope, digest, *base, delta,
                                                      dir + "/delta.bin", dir + "/work"),
                            "rebuild");
  const auto info = check(cache.find(digest), "find the target");
  uint32_t records = 0;
  check(agent::for_each_record(db, *info, target,
                               [&](pb::ResourceRecord&) -> Status {
                                 records++;
                                 return {};
                               }),
        "read the rebuilt bundle");
  if (records != target.resource_count() || !info->rebuilt) {
    throw std::runtime_error("the rebuilt bundle does not read back whole");
  }
  std::printf("rebuilt %u records, %llu B payload in %u chunks\n", result.records,
              static_cast<unsigned long long>(result.payload_size), result.chunk_count);
  return 0;
}

// The full-bundle path for comparison: the base read from the cache record by record.
int child_read(const std::string& dir) {
  auto db = check(store::open_agent_database(dir + "/run.db"), "open the agent database");
  const auto trust = check(TrustPolicy::from_initial(read_text(dir + "/trust.root")), "trust");
  const std::string envelope = read_text(dir + "/base.envelope");
  std::string digest;
  const auto manifest = check(trust.verify_manifest(envelope, &digest), "base manifest");
  store::BundleCache cache(db);
  const auto info = check(cache.find(digest), "find the base");
  if (!info) throw std::runtime_error("the base bundle is not cached");
  uint32_t records = 0;
  check(agent::for_each_record(db, *info, manifest,
                               [&](pb::ResourceRecord&) -> Status {
                                 records++;
                                 return {};
                               }),
        "read the base");
  return records == manifest.resource_count() ? 0 : 1;
}

int child(const std::string& what, const std::string& dir) {
  if (what == "idle") {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return 0;
  }
  if (what == "rebuild") return child_rebuild(dir);
  if (what == "read") return child_read(dir);
  throw std::runtime_error("unknown child mode " + what);
}

// ------------------------------------------------------------------------------- the parent

std::string self_path() {
  return std::filesystem::read_symlink("/proc/self/exe").string();
}

struct Case {
  std::string name;
  std::string dir;
  uint64_t content = 0;  // bytes of the target's record stream
};

void cache_base(const std::string& path, const Built& base);

// Everything a child needs in `dir`: an agent database holding the base (as a full fetch leaves
// it), the signed target manifest, the signed delta manifest and the delta's bytes.
Case prepare(const std::string& name, const std::string& dir, const std::string& trust_root,
             const Built& base, const Built& target, const Delta& delta,
             const std::string& delta_envelope) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  write_text(dir + "/trust.root", trust_root);
  write_text(dir + "/base.envelope", base.signed_manifest.envelope);
  write_text(dir + "/target.envelope", target.signed_manifest.envelope);
  write_text(dir + "/delta.envelope", delta_envelope);
  write_text(dir + "/delta.bin", delta.bytes);
  cache_base(dir + "/base.db", base);
  return Case{name, dir, target.stream.size()};
}

// An agent database holding `base` verified, as a full fetch leaves it.
void cache_base(const std::string& path, const Built& base) {
  auto db = check(store::open_agent_database(path), "create the agent database");
  store::BundleCache cache(db);
  store::BundleMeta meta;
  meta.digest = base.signed_manifest.digest;
  meta.stack = base.manifest.stack();
  meta.channel = base.manifest.channel();
  meta.version = base.manifest.version();
  meta.envelope = base.signed_manifest.envelope;
  meta.chunk_count = static_cast<uint32_t>(base.manifest.chunk_sha256_size());
  meta.payload_size = base.manifest.payload_size();
  check(cache.begin(meta), "cache the base");
  const std::string_view payload = base.payload;
  for (uint32_t i = 0; i < meta.chunk_count; i++) {
    const size_t at = size_t{i} * base.manifest.chunk_size();
    check(cache.put_chunk(meta.digest, i, payload.substr(at, base.manifest.chunk_size())),
          "cache a chunk");
  }
  check(cache.set_state(meta.digest, store::BundleState::complete), "mark complete");
  check(cache.set_state(meta.digest, store::BundleState::verified), "mark verified");
}

// The highest peaks of several runs of `child <what>` on a fresh copy of the database; a quick
// child runs until at least 100 samples are taken.
ProcessStats measure(const Case& c, const std::string& what) {
  constexpr double kSampleMs = 2;
  ProcessStats peak;
  int runs = 0;
  for (; runs < 3 || (peak.samples < 100 && runs < 30); runs++) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(c.dir + "/run.db" + suffix);
    }
    std::filesystem::copy_file(c.dir + "/base.db", c.dir + "/run.db");
    std::filesystem::remove_all(c.dir + "/work");
    std::filesystem::create_directories(c.dir + "/work");
    const std::string log = c.dir + "/" + what + ".log";
    std::filesystem::remove(log);
    const auto s = run_process({self_path(), "child", what, c.dir}, log, kSampleMs);
    if (s.exit_code != 0) {
      throw std::runtime_error("child " + what + " (" + c.name + ") failed: " + read_text(log));
    }
    if (what == "rebuild" && !std::filesystem::is_empty(c.dir + "/work")) {
      throw std::runtime_error("the rebuild left temporary files in " + c.dir + "/work");
    }
    peak.peak_anon = std::max(peak.peak_anon, s.peak_anon);
    peak.peak_rss = std::max(peak.peak_rss, s.peak_rss);
    peak.seconds = std::max(peak.seconds, s.seconds);
    peak.samples += s.samples;
  }
  note(what + " (" + c.name + "): " + std::to_string(peak.samples) + " samples in " +
       std::to_string(runs) + " runs of up to " + fixed(peak.seconds, 2) + " s");
  return peak;
}

struct Context {
  Paths paths;
  std::string data;
};

// An upgrade: the manifests folders of the version an agent holds and of the next.
struct Pair {
  std::string name;
  std::string old_dir;
  std::string new_dir;
};

// `zstd -19 --patch-from` of the new version's YAML (its files concatenated in order) against
// the old's: what a bare diff of the same content costs, with no signature and no framing.
uint64_t patch_from_bytes(const Pair& pair, const std::string& dir) {
  auto concat = [&](const std::string& from, const std::string& to) {
    std::string all;
    for (const auto& f : check(fs::list_files(from, {".yaml", ".yml", ".json"}), "list " + from)) {
      all += read_text(f);
    }
    write_text(to, all);
  };
  concat(pair.old_dir, dir + "/old.yaml");
  concat(pair.new_dir, dir + "/new.yaml");
  const std::string out = shell_output("zstd -q -f -19 --patch-from='" + dir + "/old.yaml' '" +
                                       dir + "/new.yaml' -o '" + dir + "/yaml.patch' 2>&1");
  if (!std::filesystem::exists(dir + "/yaml.patch")) {
    throw std::runtime_error("zstd --patch-from failed: " + out);
  }
  return file_size(dir + "/yaml.patch");
}

std::string bundle_file(const Built& b) {
  return encode_bundle_header(static_cast<uint32_t>(b.signed_manifest.envelope.size())) +
         b.signed_manifest.envelope + b.payload;
}

// Every packet on the agent's link, one line each, with the total.
void print_packets(const testing::LoopbackResult& r) {
  for (const auto& p : r.packets) {
    note(std::string(p.in ? "  hub -> agent " : "  agent -> hub ") + p.what + ": " +
         std::to_string(p.bytes) + " B" +
         (p.payload ? " (payload " + std::to_string(p.payload) + " B)" : std::string()));
  }
}

// The upgrade fetched as a delta by the real agent from the real hub: its wire bytes against
// patch-from, for the first agent to ask (the hub makes the delta meanwhile) and for the next.
bool wire_bar(const Pair& pair, const std::string& dir, const std::string& trust_root,
              const SecretKey& publisher, const Built& old_bundle, const Built& new_bundle) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const uint64_t patch = patch_from_bytes(pair, dir);
  write_text(dir + "/v1.sdb", bundle_file(old_bundle));
  write_text(dir + "/v2.sdb", bundle_file(new_bundle));
  cache_base(dir + "/agent.db", old_bundle);
  testing::LoopbackUpgrade u;
  u.dir = dir + "/run";
  u.trust_root = trust_root;
  u.publisher = publisher;
  u.base_file = dir + "/v1.sdb";
  u.target_file = dir + "/v2.sdb";
  u.agent_db = dir + "/agent.db";
  u.base_digest = old_bundle.signed_manifest.digest;
  u.base_version = old_bundle.manifest.version();
  u.stack = old_bundle.manifest.stack();
  u.channel = old_bundle.manifest.channel();
  // What the answer carries, made as the hub makes it.
  const Delta delta = check(make_delta(old_bundle.stream, new_bundle.stream), "make the delta");
  const std::string offer =
      sign_delta_offer(make_delta_manifest(new_bundle.signed_manifest.digest,
                                           old_bundle.signed_manifest.digest, delta, 0),
                       {publisher});
  note(pair.name + ": the answer carries the signed manifest (" +
       std::to_string(new_bundle.signed_manifest.envelope.size()) +
       " B), the signed delta offer (" + std::to_string(offer.size()) + " B) and the delta (" +
       std::to_string(delta.bytes.size()) + " B)");
  // The exchange agents used before the one-answer form, for comparison.
  u.agents_before = 1;
  u.old_agent = true;
  const auto older = testing::fetch_upgrade_over_loopback(u);
  if (!older.error.empty()) throw std::runtime_error("fetch " + pair.name + ": " + older.error);
  note(pair.name + ": the older exchange (manifest, delta manifest and chunk answers apart) " +
       std::to_string(older.bytes) + " B in " + std::to_string(older.packets.size()) +
       " MQTT packets");
  u.old_agent = false;
  bool ok = true;
  for (const int before : {1, 0}) {
    u.agents_before = before;
    const auto r = testing::fetch_upgrade_over_loopback(u);
    if (!r.error.empty()) throw std::runtime_error("fetch " + pair.name + ": " + r.error);
    if (!r.used_delta) throw std::runtime_error("fetch " + pair.name + " did not use a delta");
    if (before == 1) {
      note(pair.name + ": every packet on the agent's link (the delta made already):");
      print_packets(r);
    }
    if (before == 1) {
      ok &= verdict("delta wire " + pair.name + ": " + std::to_string(r.bytes) + " B in " +
                        std::to_string(r.packets.size()) +
                        " MQTT packets (baseline zstd -19 --patch-from of the YAML " +
                        std::to_string(patch) + " B) <= " + std::to_string(patch) + " + " +
                        std::to_string(kWireOverheadBar) + " B",
                    r.bytes <= patch + kWireOverheadBar);
    } else {
      // Not gated: it depends on how long this machine takes to make the delta.
      note(pair.name + ", the first agent to ask (the hub makes the delta meanwhile): " +
           std::to_string(r.bytes) + " B in " + std::to_string(r.packets.size()) + " MQTT packets");
    }
  }
  return ok;
}

bool run_bench(const Context& ctx) {
  bool ok = true;
  const SecretKey root = generate_key("bench-root");
  const SecretKey publisher = generate_key("bench-publisher");
  // Legacy root: the loopback hub signs all with one key (same bytes as under split roles).
  TrustRootSpec spec;
  spec.root_keys = {{root.name, root.public_key()}};
  spec.publisher_keys = {{publisher.name, publisher.public_key()}};
  const std::string trust_root =
      check(sign_trust_root(check(make_trust_root(spec), "trust root"), {root}), "sign trust root");

  const std::string fixtures = std::string(SOVDEV_BENCH_SOURCE_DIR) + "/tests/fixtures/edge-stack";
  const Pair in_repo{"edge-stack v1->v2", fixtures + "/v1/manifests", fixtures + "/v2/manifests"};
  const Pair corpus{"kube-prometheus " + std::string(kOld) + "->" + kNew,
                    ctx.paths.kube_prometheus(kOld), ctx.paths.kube_prometheus(kNew)};
  const bool have_corpus = std::filesystem::is_directory(corpus.old_dir) &&
                           std::filesystem::is_directory(corpus.new_dir);
  const bool have_in_repo = std::filesystem::is_directory(in_repo.old_dir) &&
                            std::filesystem::is_directory(in_repo.new_dir);
  if (!have_in_repo) {
    ok &= verdict("delta wire " + in_repo.name + ": the in-repo pair is missing from " + fixtures,
                  false);
  } else {
    const Built v1 = build(load_objects(in_repo.old_dir), 1, publisher, 19);
    const Built v2 = build(load_objects(in_repo.new_dir), 2, publisher, 19);
    note(in_repo.name + ": " + std::to_string(v2.records) + " objects, bundles " +
         std::to_string(v1.file_size()) + " B and " + std::to_string(v2.file_size()) + " B");
    ok &= wire_bar(in_repo, ctx.data + "/wire-in-repo", trust_root, publisher, v1, v2);
  }
  if (!have_corpus) {
    std::printf("delta wire %s: skipped: %s is absent (pass --shared DIR) SKIPPED\n",
                corpus.name.c_str(), corpus.old_dir.c_str());
    std::printf("delta size %s: skipped: %s is absent (pass --shared DIR) SKIPPED\n",
                corpus.name.c_str(), corpus.old_dir.c_str());
    std::fflush(stdout);
  }
  const Pair& mem = have_corpus ? corpus : in_repo;
  if (!have_corpus && !have_in_repo) return false;

  auto start = std::chrono::steady_clock::now();
  const auto old_objects = load_objects(mem.old_dir);
  const auto new_objects = load_objects(mem.new_dir);
  const Built old_bundle = build(old_objects, 1, publisher, 19);
  const Built new_bundle = build(new_objects, 2, publisher, 19);
  note("bundles as sovdev-hub build makes them (zstd 19, window 2^21): " + mem.name + " " +
       std::to_string(old_bundle.file_size()) + " B -> " + std::to_string(new_bundle.file_size()) +
       " B, " + std::to_string(new_bundle.records) + " objects, " + mib(new_bundle.stream.size()) +
       " of records (" + fixed(seconds_since(start), 1) + " s)");

  start = std::chrono::steady_clock::now();
  const Delta delta = check(make_delta(old_bundle.stream, new_bundle.stream), "make the delta");
  const double make_seconds = seconds_since(start);
  const std::string delta_envelope =
      sign_delta_manifest(make_delta_manifest(new_bundle.signed_manifest.digest,
                                              old_bundle.signed_manifest.digest, delta),
                          {publisher});
  note("delta made in " + fixed(make_seconds, 1) + " s (zstd 19, window 2^" +
       std::to_string(delta.window_log) +
       ", the old record stream as prefix): " + std::to_string(delta.bytes.size()) + " B");
  if (have_corpus) {
    ok &=
        wire_bar(corpus, ctx.data + "/wire-corpus", trust_root, publisher, old_bundle, new_bundle);
    // ---- size: the delta against the full bundle
    const uint64_t wire = delta.bytes.size() + delta_envelope.size();
    const uint64_t full = new_bundle.file_size();
    auto files = check(fs::list_files(corpus.new_dir, {".yaml", ".yml", ".json"}), "list the YAML");
    std::string cat = "cat";
    for (const auto& f : files) cat += " '" + f + "'";
    const uint64_t gz64 = std::stoull(shell_output(cat + " | gzip -9 -c | base64 -w0 | wc -c"));
    const double percent = 100.0 * static_cast<double>(wire) / static_cast<double>(full);
    ok &= verdict("delta size " + corpus.name + ": delta " + std::to_string(delta.bytes.size()) +
                      " B + signed delta manifest " + std::to_string(delta_envelope.size()) +
                      " B = " + std::to_string(wire) + " B (baseline full bundle " +
                      std::to_string(full) + " B; gzip+base64 of the YAML " + std::to_string(gz64) +
                      " B) " + fixed(percent, 2) + " % <= " + fixed(kSizeBarPercent, 2) + " %",
                  percent <= kSizeBarPercent);
    const Built tagged = build(one_tag_changed(new_objects), 3, publisher, 19);
    const Delta small = check(make_delta(new_bundle.stream, tagged.stream), "one-tag delta");
    const uint64_t small_wire =
        small.bytes.size() +
        sign_delta_manifest(make_delta_manifest(tagged.signed_manifest.digest,
                                                new_bundle.signed_manifest.digest, small),
                            {publisher})
            .size();
    note("one image tag changed on top of " + std::string(kNew) + ": " +
         std::to_string(small_wire) + " B of delta and delta manifest (" +
         fixed(100.0 * static_cast<double>(small_wire) / static_cast<double>(tagged.file_size()),
               2) +
         " % of its full bundle)");
  }

  // ---- memory: the agent rebuilding, sampled from outside
  const Case upgrade = prepare(mem.name + " upgrade", ctx.data + "/upgrade", trust_root, old_bundle,
                               new_bundle, delta, delta_envelope);
  start = std::chrono::steady_clock::now();
  const Built big_old = build(old_objects, 1, publisher, 3, kBigContent);
  const Built big_new = build(new_objects, 2, publisher, 3, kBigContent);
  DeltaOptions quick;
  quick.level = 9;  // this case is about the agent's memory; the size bars are the ones above
  const Delta big_delta = check(make_delta(big_old.stream, big_new.stream, quick), "big delta");
  const Case big =
      prepare(mib(big_new.stream.size()) + " of records", ctx.data + "/big", trust_root, big_old,
              big_new, big_delta,
              sign_delta_manifest(make_delta_manifest(big_new.signed_manifest.digest,
                                                      big_old.signed_manifest.digest, big_delta),
                                  {publisher}));
  note("large case: " + mib(big_old.stream.size()) + " -> " + mib(big_new.stream.size()) +
       " of records (" + mem.name + " copied, zstd 3), delta " +
       std::to_string(big_delta.bytes.size()) + " B at zstd 9, window 2^" +
       std::to_string(big_delta.window_log) + " (ready in " + fixed(seconds_since(start), 1) +
       " s)");

  const auto idle = measure(upgrade, "idle");
  const auto reading = measure(upgrade, "read");
  const std::string baseline = "(baseline: idle RssAnon " + mib(idle.peak_anon) +
                               "; reading the full old bundle from the cache RssAnon " +
                               mib(reading.peak_anon) + ", VmRSS " + mib(reading.peak_rss) + ")";
  uint64_t peaks[2] = {};
  int i = 0;
  for (const Case* c : {&upgrade, &big}) {
    const auto s = measure(*c, "rebuild");
    peaks[i++] = s.peak_anon;
    ok &= verdict("rebuild memory " + c->name + ": peak RssAnon " + mib(s.peak_anon) +
                      ", peak VmRSS " + mib(s.peak_rss) + " in " + fixed(s.seconds, 2) + " s " +
                      baseline + " <= 12.0 MiB",
                  s.peak_anon <= kMemoryBar);
  }
  const uint64_t spread = peaks[1] > peaks[0] ? peaks[1] - peaks[0] : peaks[0] - peaks[1];
  ok &= verdict("rebuild memory flat: the " + big.name + " and " + upgrade.name +
                    " peaks differ by " + mib(spread) + " <= 2.0 MiB",
                spread <= kFlatBar);
  return ok;
}

int usage() {
  std::fprintf(stderr,
               "usage: bench_delta [--shared DIR] [--data DIR]\n"
               "  --shared  folder holding realworld/kube-prometheus (default %s; absent: that\n"
               "            pair is reported as skipped)\n"
               "  --data    where to put generated files (default: a temporary folder, removed "
               "at the end)\n",
               SOVDEV_BENCH_SHARED_DIR);
  return 2;
}

int run(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "child") return child(argv[2], argv[3]);
  Context ctx{{SOVDEV_BENCH_BUILD_DIR, SOVDEV_BENCH_SHARED_DIR}, ""};
  if (argc % 2 != 1) return usage();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    std::string* value = flag == "--shared"  ? &ctx.paths.shared_dir
                         : flag == "--data"  ? &ctx.data
                         : flag == "--build" ? &ctx.paths.build_dir  // accepted for run.sh
                                             : nullptr;
    if (value == nullptr) return usage();
    *value = argv[i + 1];
  }
  std::optional<TempDir> temp;
  if (ctx.data.empty()) ctx.data = temp.emplace().path();
  ctx.data += "/delta";
  std::filesystem::create_directories(ctx.data);
  const bool ok = run_bench(ctx);
  std::filesystem::remove_all(ctx.data);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace sovdev::bench

int main(int argc, char** argv) {
  try {
    return sovdev::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_delta: %s\n", e.what());
    return 2;
  }
}
