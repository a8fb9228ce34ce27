#include "bench/bench_data.hpp"

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>

#include "bench/bench_support.hpp"
#include "bundles/bundle_file.hpp"
#include "bundles/keys.hpp"
#include "bundles/payload.hpp"
#include "bundles/sign_objects.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::bench {
namespace {

using File = std::unique_ptr<FILE, int (*)(FILE*)>;

File open_file(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode), std::fclose);
  if (!f) throw std::runtime_error("cannot open " + path);
  return f;
}

template <class T>
T checked(Expected<T> value, const std::string& what) {
  if (!value) throw std::runtime_error(what + ": " + value.error().message);
  return std::move(value).value();
}

void checked(const Status& status, const std::string& what) {
  if (!status) throw std::runtime_error(what + ": " + status.error().message);
}

// Numbers of a generated bundle, kept beside it so another mode can reuse the files.
void save_info(const GeneratedBundle& g) {
  auto f = open_file(g.bundle + ".info", "w");
  std::fprintf(f.get(), "%llu %llu %llu %llu\n", static_cast<unsigned long long>(g.uncompressed),
               static_cast<unsigned long long>(g.payload_size),
               static_cast<unsigned long long>(g.records),
               static_cast<unsigned long long>(g.copies));
}

bool load_info(GeneratedBundle& g) {
  if (!std::filesystem::exists(g.bundle + ".info")) return false;
  auto f = open_file(g.bundle + ".info", "r");
  unsigned long long v[4] = {};
  if (std::fscanf(f.get(), "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) != 4) return false;
  g.uncompressed = v[0];
  g.payload_size = v[1];
  g.records = v[2];
  g.copies = v[3];
  return true;
}

// Compresses the records `fill` adds into `prefix`.zst, then writes `prefix`.sdb: header,
// signed manifest, payload.
using Fill = std::function<void(PayloadWriter&, uint64_t& payload_bytes)>;

GeneratedBundle write_bundle(const std::string& key_file, const std::string& prefix,
                             const PayloadWriter::Options& options, const Fill& fill) {
  GeneratedBundle g;
  g.bundle = prefix + ".sdb";
  g.payload = prefix + ".zst";
  const SecretKey key = checked(parse_secret_key(read_text(key_file)), "read " + key_file);
  PayloadSummary summary;
  {
    auto out = open_file(g.payload, "wb");
    uint64_t written = 0;
    auto writer =
        checked(PayloadWriter::create(options,
                                      [&](std::string_view bytes) -> Status {
                                        std::fwrite(bytes.data(), 1, bytes.size(), out.get());
                                        written += bytes.size();
                                        return {};
                                      }),
                "create payload writer");
    fill(writer, written);
    summary = checked(writer.finish(), "finish payload");
    if (std::fflush(out.get()) != 0) throw std::runtime_error("cannot write " + g.payload);
  }
  const BundleInfo info{"kp", "edge", 1, {"amd64", "arm64"}, "bench", "", 0};
  const pb::BundleManifest manifest = make_manifest(info, summary, options);
  checked(check_manifest_shape(manifest), "manifest");
  const SignedManifest signed_manifest = sign_manifest(manifest, {key});

  auto out = open_file(g.bundle, "wb");
  const std::string header =
      encode_bundle_header(static_cast<uint32_t>(signed_manifest.envelope.size()));
  std::fwrite(header.data(), 1, header.size(), out.get());
  std::fwrite(signed_manifest.envelope.data(), 1, signed_manifest.envelope.size(), out.get());
  auto in = open_file(g.payload, "rb");
  std::vector<char> buffer(1 << 20);
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), in.get())) > 0) {
    std::fwrite(buffer.data(), 1, n, out.get());
  }
  if (std::fflush(out.get()) != 0) throw std::runtime_error("cannot write " + g.bundle);
  g.uncompressed = summary.uncompressed_size;
  g.payload_size = summary.payload_size;
  g.records = summary.resource_count;
  return g;
}

// The object's own metadata.name renamed too, so each copy is a distinct, consistent object.
// Keys are sorted in the compact JSON, so the first "name" after "metadata" is the object's.
std::string renamed_object_json(const std::string& json, const std::string& name,
                                const std::string& suffix) {
  const size_t meta = json.find("\"metadata\":{");
  const std::string field = "\"name\":\"" + name + "\"";
  const size_t at = meta == std::string::npos ? meta : json.find(field, meta);
  if (at == std::string::npos) return json;
  std::string out = json;
  out.insert(at + field.size() - 1, suffix);
  return out;
}

}  // namespace

std::vector<yaml::Object> load_objects(const std::string& manifests_dir) {
  const auto paths =
      checked(fs::list_files(manifests_dir, {".yaml", ".yml", ".json"}), "list " + manifests_dir);
  std::vector<yaml::Object> objects;
  for (const auto& path : paths) {
    const std::string text = read_text(path);
    const std::string shown = std::filesystem::path(path).lexically_relative(manifests_dir);
    for (auto& o : checked(yaml::parse_manifests(shown, text), "parse " + path)) {
      objects.push_back(std::move(o));
    }
  }
  return checked(yaml::order_objects(std::move(objects)), "order " + manifests_dir);
}

GeneratedBundle make_repeated_bundle(const std::vector<yaml::Object>& objects, uint64_t target,
                                     const std::string& key_file, const std::string& prefix) {
  GeneratedBundle reused{prefix + ".sdb", prefix + ".zst"};
  if (load_info(reused)) return reused;
  PayloadWriter::Options options;
  options.level = 3;
  uint64_t copies = 0;
  auto g = write_bundle(key_file, prefix, options, [&](PayloadWriter& writer, uint64_t&) {
    uint64_t content = 0;
    for (uint64_t copy = 0; content < target; copy++) {
      const std::string suffix = copy == 0 ? "" : "-c" + std::to_string(copy);
      copies = copy + 1;
      for (const auto& o : objects) {
        if (content >= target) break;
        pb::ResourceRecord r;
        r.set_api_version(o.api_version);
        r.set_kind(o.kind);
        r.set_namespace_(o.namespace_);
        r.set_name(o.name + suffix);
        r.set_json(suffix.empty() ? o.json : renamed_object_json(o.json, o.name, suffix));
        r.set_source(o.source);
        content += r.ByteSizeLong();
        checked(writer.add(r), "add " + o.kind + "/" + o.name);
      }
    }
  });
  g.copies = copies;
  save_info(g);
  return g;
}

GeneratedBundle make_random_bundle(uint64_t target_payload, const std::string& key_file,
                                   const std::string& prefix) {
  GeneratedBundle reused{prefix + ".sdb", prefix + ".zst"};
  if (load_info(reused)) return reused;
  PayloadWriter::Options options;
  options.level = 1;
  constexpr size_t kRecordData = (1 << 20) / 10 * 10;  // whole groups of 10 characters
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto g = write_bundle(key_file, prefix, options, [&](PayloadWriter& writer, uint64_t& written) {
    uint64_t state = 0x9E3779B97F4A7C15ull;  // xorshift64*: fast, and plenty random for zstd
    std::string data(kRecordData, '\0');
    for (uint64_t i = 0; written < target_payload; i++) {
      for (size_t at = 0; at < data.size(); at += 10) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        uint64_t bits = state * 0x2545F4914F6CDD1Dull;
        for (size_t k = 0; k < 10; k++, bits >>= 6) data[at + k] = kAlphabet[bits & 63];
      }
      const std::string name = "random-" + std::to_string(i);
      pb::ResourceRecord r;
      r.set_api_version("v1");
      r.set_kind("ConfigMap");
      r.set_namespace_("default");
      r.set_name(name);
      r.set_json("{\"apiVersion\":\"v1\",\"binaryData\":{\"blob\":\"" + data +
                 "\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"" + name +
                 "\",\"namespace\":\"default\"}}");
      r.set_source("random:" + std::to_string(i));
      checked(writer.add(r), "add " + name);
    }
  });
  save_info(g);
  return g;
}

}  // namespace sovdev::bench
