#include "hub/build.hpp"

#include <filesystem>

#include "bundles/bundle_file.hpp"
#include "bundles/hash.hpp"
#include "bundles/yaml/objects.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub {
namespace {

constexpr size_t kMaxManifestFile = 64 * 1024 * 1024;

struct Sources {
  std::vector<yaml::Object> objects;
  size_t files = 0;
  uint64_t bytes = 0;
};

Expected<Sources> read_sources(const BuildRequest& req) {
  SOVDEV_ASSIGN(auto paths, fs::list_files(req.source_dir, {".yaml", ".yml", ".json"}));
  if (paths.empty()) {
    return make_error(Errc::invalid, "no .yaml, .yml or .json files under " + req.source_dir);
  }
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& p : paths) total += std::filesystem::file_size(p, ec);
  Sources sources;
  for (const auto& path : paths) {
    SOVDEV_ASSIGN(std::string text, fs::read_file(path, kMaxManifestFile));
    // Messages name the file as the user knows it: relative to the folder they gave.
    const std::string shown =
        std::filesystem::path(path).lexically_relative(req.source_dir).string();
    SOVDEV_ASSIGN(auto objects, yaml::parse_manifests(shown, text));
    for (auto& o : objects) sources.objects.push_back(std::move(o));
    sources.files++;
    sources.bytes += text.size();
    if (req.progress) req.progress({"reading", sources.bytes, total});
  }
  return sources;
}

pb::ResourceRecord to_record(yaml::Object&& o) {
  pb::ResourceRecord r;
  r.set_api_version(std::move(o.api_version));
  r.set_kind(std::move(o.kind));
  r.set_namespace_(std::move(o.namespace_));
  r.set_name(std::move(o.name));
  r.set_json(std::move(o.json));
  r.set_source(std::move(o.source));
  return r;
}

}  // namespace

Expected<BuildResult> build_bundle(const BuildRequest& req) {
  if (req.keys.empty()) return make_error(Errc::usage, "no publisher key to sign with");
  SOVDEV_ASSIGN(Sources sources, read_sources(req));
  SOVDEV_ASSIGN(auto ordered, yaml::order_objects(std::move(sources.objects)));

  // The header needs the manifest, which needs the payload's hashes: compress to a temporary
  // file first, then write header, manifest and payload into the final file.
  SOVDEV_ASSIGN(fs::OutputFile payload_file, fs::OutputFile::create(req.out_path + ".payload"));
  uint64_t uncompressed_total = 0;
  for (const auto& o : ordered) uncompressed_total += o.json.size();
  uint64_t uncompressed_done = 0;
  SOVDEV_ASSIGN(auto writer, PayloadWriter::create(req.options, [&](std::string_view bytes) {
                  return payload_file.write(bytes);
                }));
  uint64_t last_report = 0;
  for (auto& o : ordered) {
    uncompressed_done += o.json.size();
    SOVDEV_TRY(writer.add(to_record(std::move(o))));
    if (req.progress && uncompressed_done - last_report >= (4u << 20)) {
      last_report = uncompressed_done;
      req.progress({"compressing", uncompressed_done, uncompressed_total});
    }
  }
  ordered.clear();
  SOVDEV_ASSIGN(PayloadSummary summary, writer.finish());

  BuildResult result;
  result.manifest = make_manifest(req.info, summary, req.options);
  SOVDEV_TRY(check_manifest_shape(result.manifest));
  SignedManifest signed_manifest = sign_manifest(result.manifest, req.keys);
  const std::string& envelope = signed_manifest.envelope;
  result.digest = signed_manifest.digest;

  SOVDEV_ASSIGN(fs::OutputFile out, fs::OutputFile::create(req.out_path));
  SOVDEV_TRY(out.write(encode_bundle_header(static_cast<uint32_t>(envelope.size()))));
  SOVDEV_TRY(out.write(envelope));
  {
    SOVDEV_ASSIGN(fs::InputFile in, fs::InputFile::open(payload_file.temp_path()));
    for (;;) {
      SOVDEV_ASSIGN(std::string_view piece, in.read(1 << 20));
      if (piece.empty()) break;
      SOVDEV_TRY(out.write(piece));
    }
  }
  result.file_size = out.written();
  SOVDEV_TRY(out.commit());
  result.files = sources.files;
  result.input_bytes = sources.bytes;
  if (req.progress) req.progress({"writing", result.file_size, result.file_size});
  return result;  // payload_file is dropped uncommitted: its temporary file is removed
}

}  // namespace sovdev::hub
