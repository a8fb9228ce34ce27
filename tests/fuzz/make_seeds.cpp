// fuzz_make_seeds <out-dir>: writes the valid seed inputs of every harness that reads signed or
// binary data, one folder per harness (bundle/, payload/, manifest/, ...). The output is the
// same on every run (fixed keys, deterministic Ed25519 and zstd), so it can be committed as
// tests/fuzz/corpus/ and regenerated when a format changes. The YAML seeds are plain files in
// tests/fuzz/corpus/yaml/; the bundle seeds are built from some of them.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bundles/bundle_file.hpp"
#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "bundles/manifest_rules.hpp"
#include "bundles/yaml/objects.hpp"
#include "common/hex.hpp"
#include "platform/fs/files.hpp"
#include "tests/fuzz/fixtures.hpp"

using namespace sovdev;
namespace stdfs = std::filesystem;

namespace {

stdfs::path g_out;

void write_seed(const std::string& harness, const std::string& name, std::string_view bytes) {
  const stdfs::path dir = g_out / harness;
  stdfs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) fuzz::fail("cannot write " + (dir / name).string());
}

std::string byte(uint8_t b) {
  return std::string(1, static_cast<char>(b));
}

std::string little_endian(uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

std::vector<pb::ResourceRecord> records_from_yaml(const std::vector<std::string>& files) {
  std::vector<yaml::Object> objects;
  for (const auto& name : files) {
    const std::string path = std::string(SOVDEV_FUZZ_CORPUS_DIR) + "/yaml/" + name;
    auto text = fs::read_file(path, 1 << 20);
    if (!text) fuzz::fail(text.error().message);
    auto parsed = yaml::parse_manifests(name, *text);
    if (!parsed) fuzz::fail(parsed.error().message);
    for (auto& o : *parsed) objects.push_back(std::move(o));
  }
  auto ordered = yaml::order_objects(std::move(objects));
  if (!ordered) fuzz::fail(ordered.error().message);
  std::vector<pb::ResourceRecord> records;
  for (auto& o : *ordered) {
    auto r = fuzz::record(o.api_version, o.kind, o.namespace_, o.name, o.json);
    r.set_source(o.source);
    records.push_back(std::move(r));
  }
  return records;
}

// Letters from a fixed generator: they barely compress, so a small bundle spans several chunks.
std::string noise(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

// The fuzz_payload header (see fuzz_payload.cpp) that makes `b` decode in full.
std::string payload_seed(const fuzz::Bundle& b, uint8_t piece_selector, bool with_hash) {
  const pb::BundleManifest& m = b.manifest;
  std::string s = byte(static_cast<uint8_t>(m.window_log() - 10));
  s += byte(static_cast<uint8_t>((with_hash ? 1 : 0) | (piece_selector << 1)));
  s += little_endian(m.uncompressed_size(), 3);
  s += little_endian(m.max_record_size(), 3);
  s += byte(static_cast<uint8_t>(m.chunk_size() / kMinChunkSize - 1));
  s += little_endian(m.resource_count(), 2);
  if (with_hash) s += m.uncompressed_sha256();
  return s + b.payload;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds <out-dir>\n");
    return 2;
  }
  g_out = argv[1];
  const auto& k = fuzz::keys();

  // ---- bundles: a real stack, one signed twice, one spanning two 4 KiB chunks
  PayloadWriter::Options real;  // the hub's defaults
  const fuzz::Bundle kube = fuzz::make_bundle(
      records_from_yaml({"kube-prometheus-alertmanager-serviceMonitor.yaml",
                         "kube-prometheus-prometheus-roleSpecificNamespaces.yaml"}),
      fuzz::default_info(), real, {k.pub_a});

  PayloadWriter::Options small;
  small.level = 3;
  small.window_log = 10;
  small.chunk_size = kMinChunkSize;
  BundleInfo info = fuzz::default_info();
  info.stack = "demo";
  info.version = 3;
  const fuzz::Bundle twice = fuzz::make_bundle(
      {fuzz::record("v1", "Namespace", "", "edge", R"({"apiVersion":"v1","kind":"Namespace"})"),
       fuzz::record("v1", "ConfigMap", "edge", "settings", R"({"data":{"a":"1"}})")},
      info, small, {k.pub_a, k.pub_b});
  info.version = 4;
  const fuzz::Bundle chunked =
      fuzz::make_bundle({fuzz::record("v1", "ConfigMap", "edge", "noise-1", noise(4000, 1)),
                         fuzz::record("v1", "ConfigMap", "edge", "noise-2", noise(3500, 2))},
                        info, small, {k.pub_b});
  if (chunked.manifest.chunk_sha256_size() < 2) fuzz::fail("noise bundle fits one chunk");

  write_seed("bundle", "kube-prometheus.sdb", kube.file);
  write_seed("bundle", "signed-twice.sdb", twice.file);
  write_seed("bundle", "two-chunks.sdb", chunked.file);

  write_seed("payload", "kube-prometheus", payload_seed(kube, 7, true));
  write_seed("payload", "signed-twice-bytewise", payload_seed(twice, 0, false));
  write_seed("payload", "two-chunks", payload_seed(chunked, 3, false));

  write_seed("manifest", "kube-prometheus", kube.manifest.SerializeAsString());
  write_seed("manifest", "two-chunks", chunked.manifest.SerializeAsString());

  // ---- catalogs: as received (signed), and bodies the harness signs
  pb::Catalog catalog;
  catalog.set_schema(1);
  catalog.set_channel("edge");
  catalog.set_serial(41);
  catalog.set_issued_at(fuzz::kNow - 60);
  catalog.set_expires_at(fuzz::kNow + 7 * 86400);
  for (const fuzz::Bundle* b : {&kube, &twice}) {
    auto* e = catalog.add_entries();
    e->set_stack(b->manifest.stack());
    e->set_version(b->manifest.version());
    e->set_manifest_digest(b->digest);
    e->set_manifest_size(b->envelope.size());
    e->set_payload_size(b->manifest.payload_size());
    e->set_uncompressed_size(b->manifest.uncompressed_size());
    for (const auto& a : b->manifest.arch()) e->add_arch(a);
  }
  write_seed("catalog", "signed", byte(0) + sign_catalog(catalog, {k.pub_a}));
  write_seed("catalog", "body", byte(1) + catalog.SerializeAsString());
  catalog.set_expires_at(fuzz::kNow - 1);
  write_seed("catalog", "body-expired", byte(1) + catalog.SerializeAsString());

  // ---- trust roots
  write_seed("trust_root", "v1", byte(0) + fuzz::signed_root_v1());
  write_seed("trust_root", "v2-rotation", byte(0) + fuzz::signed_root_v2());
  write_seed("trust_root", "v2-body", byte(1) + fuzz::root_v2_body().SerializeAsString());
  write_seed("trust_root", "v2-body-unapproved",
             byte(2) + fuzz::root_v2_body().SerializeAsString());

  // ---- MQTT messages: byte 0 picks the parser
  pb::FetchRequest req;
  req.set_schema(1);
  req.set_agent_id("edge-node-01");
  req.set_request_id(7);
  req.set_manifest_digest(kube.digest);
  req.set_want_manifest(true);
  write_seed("messages", "request-manifest", byte(0) + req.SerializeAsString());
  req.set_want_manifest(false);
  auto* range = req.add_chunks();
  range->set_first(0);
  range->set_count(3);
  req.set_base_digest(twice.digest);
  req.set_delta(true);
  write_seed("messages", "request-delta-chunks", byte(0) + req.SerializeAsString());

  pb::FetchResponse resp;
  resp.set_schema(1);
  resp.set_request_id(7);
  resp.set_manifest_digest(twice.digest);
  pb::Signed envelope;
  envelope.ParseFromString(twice.envelope);
  *resp.mutable_manifest() = envelope;
  write_seed("messages", "response-manifest", byte(1) + resp.SerializeAsString());
  resp.mutable_chunk()->set_index(1);
  resp.mutable_chunk()->set_data(chunked.payload.substr(kMinChunkSize));
  write_seed("messages", "response-chunk", byte(1) + resp.SerializeAsString());
  resp.set_error("unknown digest");
  write_seed("messages", "response-error", byte(1) + resp.SerializeAsString());

  // The epoch key exchange: a request, the grant sealed to the fixture's agent, a refusal.
  pb::FetchRequest key_req;
  key_req.set_schema(1);
  key_req.set_agent_id("edge-node-01");
  key_req.set_request_id(9);
  key_req.set_manifest_digest(kube.digest);
  key_req.mutable_epoch_key()->set_channel("edge");
  key_req.mutable_epoch_key()->set_epoch(fuzz::kEpoch);
  write_seed("messages", "request-epoch-key", byte(0) + key_req.SerializeAsString());
  const std::string grant =
      fuzz::seal_to_fixed(fuzz::agent_key().public_key, fuzz::epoch_key().view(), "grant");
  pb::FetchResponse key_resp;
  key_resp.set_schema(1);
  key_resp.set_request_id(9);
  key_resp.set_manifest_digest(kube.digest);
  key_resp.mutable_epoch_key()->set_channel("edge");
  key_resp.mutable_epoch_key()->set_epoch(fuzz::kEpoch);
  key_resp.mutable_epoch_key()->set_sealed(grant);
  write_seed("messages", "response-epoch-key", byte(1) + key_resp.SerializeAsString());
  key_resp.clear_epoch_key();
  key_resp.set_error(
      "agent edge-node-01 has no key for channel edge epoch 3: run sovdev-hub agents add "
      "edge-node-01 --pub agent.pub --channel edge");
  write_seed("messages", "response-epoch-refusal", byte(1) + key_resp.SerializeAsString());

  // ---- sealed secrets (fuzz_seal): byte 0 picks key file, sealed key, record, splice
  write_seed("seal", "key-secret", byte(0) + seal::encode_agent_secret(fuzz::agent_key()));
  write_seed("seal", "key-public", byte(0) + seal::encode_agent_public(fuzz::agent_key()));
  write_seed("seal", "sealed-key", byte(1) + grant);
  {
    pb::ResourceRecord secret = fuzz::record(
        "v1", "Secret", "sovdev", "postgresql",
        R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"postgresql","namespace":)"
        R"("sovdev"},"data":{"password":"","user":""}})");
    const std::string values = R"({"password":"czNjcjN0","user":"c292ZGV2"})";
    secret.set_sealed(fuzz::encrypt_fixed(
        fuzz::epoch_key(), values, sealed::associated_data(fuzz::place(), secret), "record"));
    write_seed("seal", "record", byte(2) + secret.SerializeAsString());
    write_seed("seal", "splice",
               byte(3) + little_endian(secret.json().size(), 2) + secret.json() + values);
  }

  pb::AgentStatus st;
  st.set_schema(1);
  st.set_agent_id("edge-node-01");
  st.set_channel("edge");
  st.set_stack("sovdev");
  st.set_applied_version(12);
  st.set_applied_digest(kube.digest);
  st.set_state("degraded");
  st.set_progress_permille(1000);
  st.set_last_error("traefik: 0 of 1 ready");
  st.set_resources_total(14);
  st.set_resources_ready(13);
  st.set_updated_at(fuzz::kNow);
  auto* svc = st.add_services();
  svc->set_service("traefik");
  svc->set_state("progressing");
  svc->set_message("0 of 1 ready");
  st.set_agent_version("0.1.0");
  write_seed("messages", "status", byte(2) + st.SerializeAsString());

  // ---- delta offers (fuzz_delta_offer): flags, inline length, [digests], inline delta, envelope
  {
    const std::string& target = fuzz::delta_target_digest();
    const std::string& base = fuzz::delta_base_digest();
    Delta delta;
    delta.bytes = noise(300, 3);
    delta.window_log = 20;
    const auto header = [](uint8_t flags, size_t inline_size) {
      return byte(flags) + little_endian(inline_size, 2);
    };
    // As the hub sends them: the inline form with the delta beside it, the chunked form.
    write_seed("delta_offer", "inline",
               header(0, delta.bytes.size()) + delta.bytes +
                   sign_delta_offer(make_delta_manifest(target, base, delta, 0), {k.pub_a}));
    write_seed(
        "delta_offer", "chunked",
        header(0, 0) + sign_delta_offer(make_delta_manifest(target, base, delta), {k.pub_b}));
    // Digests in the body (sign_delta_manifest), the pair given in the input.
    write_seed("delta_offer", "full-pair-given",
               header(1, 0) + target + base +
                   sign_delta_manifest(make_delta_manifest(target, base, delta), {k.pub_a}));
    // Signed for the pair, offered for another: refused.
    write_seed("delta_offer", "other-pair",
               header(1, delta.bytes.size()) + base + target + delta.bytes +
                   sign_delta_offer(make_delta_manifest(target, base, delta, 0), {k.pub_a}));
  }

  // ---- image blobs (fuzz_blob_wire): byte 0 picks fixed listing, naming listing, stream, trip
  {
    const fuzz::WireBlob& layer = fuzz::image_blob();
    blobwire::BlobEncoder::Options wide;  // the hub's defaults but the level
    wide.level = 3;
    const fuzz::WireBlob config = fuzz::encode_blob(
        R"({"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})", wide);
    write_seed("blob_wire", "manifest-listed", byte(0) + layer.manifest_bytes);
    write_seed("blob_wire", "manifest-named", byte(1) + layer.manifest_bytes);
    write_seed("blob_wire", "manifest-one-chunk", byte(1) + config.manifest_bytes);
    const auto stream = [](const fuzz::WireBlob& w, uint32_t window_log, size_t cut) {
      return byte(2) + byte(static_cast<uint8_t>(window_log - 10)) +
             little_endian(w.blob.size(), 3) + little_endian(cut, 2) + w.wire;
    };
    write_seed("blob_wire", "stream-listed", stream(layer, 20, kMinChunkSize));
    write_seed("blob_wire", "stream-small-window", stream(layer, 10, 0));
    write_seed("blob_wire", "stream-config", stream(config, 21, 7));
    write_seed("blob_wire", "round-trip", byte(3) + byte(2) + byte(10) + byte(0) + noise(9000, 4));

    // fuzz_manifest: a bundle carrying one image (index, then arm64's manifest, config, layer).
    pb::BundleManifest m = twice.manifest;
    const auto add_blob = [&](const std::string& digest, std::string_view type,
                              const std::string& arch, uint32_t place) {
      pb::ImageBlob* b = m.add_image_blobs();
      b->set_digest(digest);
      b->set_size(600);
      b->set_media_type(std::string(type));
      b->set_arch(arch);
      b->set_wire_digest(sha256("wire/" + digest));
      b->set_wire_size(400);
      if (place > 0) {
        b->set_repository("docker.io/library/postgres");
        b->set_layer(place);
      }
    };
    const std::string index = sha256("index");
    add_blob(index, kMediaIndex, "", 0);
    add_blob(sha256("manifest"), kMediaManifest, "arm64", 0);
    add_blob(config.manifest.digest(), kMediaConfig, "arm64", 0);
    *m.add_image_blobs() = layer.listing;
    pb::ImageRef* ref = m.add_images();
    ref->set_reference("postgres:16");
    ref->set_pinned("docker.io/library/postgres@sha256:" + to_hex(index));
    ref->set_index_digest(index);
    auto shape = check_manifest_shape(m);
    if (!shape) fuzz::fail("image manifest seed: " + shape.error().message);
    write_seed("manifest", "with-image", m.SerializeAsString());
  }

  // ---- key files
  write_seed("keys", "secret", encode_secret_key(k.pub_a));
  write_seed("keys", "public", encode_public_key({k.root_a.name, k.root_a.public_key()}));

  std::printf("seeds written under %s\n", g_out.c_str());
  return 0;
}
