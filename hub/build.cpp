#include "hub/build.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "bundles/bundle_file.hpp"
#include "bundles/hash.hpp"
#include "bundles/yaml/objects.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub {
namespace {

// $TMPDIR when it names a folder, else /tmp.
std::string temporary_folder() {
  const char* dir = std::getenv("TMPDIR");
  if (dir != nullptr && *dir != '\0' && std::filesystem::is_directory(dir)) return dir;
  return "/tmp";
}

constexpr size_t kMaxManifestFile = 64 * 1024 * 1024;

struct Sources {
  std::vector<yaml::Object> objects;
  size_t files = 0;
  uint64_t bytes = 0;
};

Expected<Sources> read_sources(const BuildRequest& req, std::vector<std::string>& used,
                               secrets::BuildSecrets& secrets) {
  Sources sources;
  auto each = [&](SourceFile&& file, uint64_t total) -> Status {
    SOVDEV_ASSIGN(auto objects, yaml::parse_manifests(file.shown, file.text));
    SOVDEV_TRY(secrets.add_file(file.shown, file.text, objects));
    for (auto& o : objects) sources.objects.push_back(std::move(o));
    sources.files++;
    sources.bytes += file.text.size();
    if (req.progress) req.progress({"reading", sources.bytes, total});
    return {};
  };
  SOVDEV_TRY(for_each_source(req, used, each));
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

Status for_each_source(const BuildRequest& req, std::vector<std::string>& used,
                       const std::function<Status(SourceFile&&, uint64_t)>& each) {
  const std::string root =
      req.env ? (std::filesystem::path(req.source_dir) / "base").string() : req.source_dir;
  SOVDEV_ASSIGN(auto paths, fs::list_files(root, {".yaml", ".yml", ".json"}));
  std::vector<std::pair<std::string, std::string>> files;  // path, shown
  for (auto& p : paths) {
    // Messages name the file as the user knows it: relative to the folder they gave.
    std::string shown = std::filesystem::path(p).lexically_relative(root).generic_string();
    if (req.env && is_excluded(*req.env, shown)) continue;
    files.emplace_back(std::move(p), std::move(shown));
  }
  if (files.empty()) {
    return make_error(Errc::invalid, "no .yaml, .yml or .json files under " + root +
                                         (req.env ? " for environment " + req.env->name : ""));
  }
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& f : files) total += std::filesystem::file_size(f.first, ec);
  for (auto& [path, shown] : files) {
    SOVDEV_ASSIGN(std::string text, fs::read_file(path, kMaxManifestFile));
    if (req.env) {
      const std::string named = "base/" + shown;
      SOVDEV_ASSIGN(text, render_text(named, text, *req.env, &used));
      shown = named;
    }
    SOVDEV_TRY(each({std::move(shown), std::move(text)}, total));
  }
  return {};
}

Expected<BuildResult> build_bundle(const BuildRequest& req) {
  if (req.keys.empty()) return make_error(Errc::usage, "no targets key to sign with");
  std::vector<std::string> used;
  secrets::BuildSecrets secrets(req.secrets);
  SOVDEV_ASSIGN(Sources sources, read_sources(req, used, secrets));
  SOVDEV_ASSIGN(auto ordered, yaml::order_objects(std::move(sources.objects)));
  // Before anything is written: every refusal (literal values, missing values, no agents)
  // comes out before a temporary file exists.
  SOVDEV_TRY(secrets.prepare(req.info.stack, req.info.version, req.info.channel));
  if (req.images) {
    // Also before any file is written: an image no source has is refused first.
    for (const auto& o : ordered) SOVDEV_TRY(req.images->add_object(o.kind, o.json, o.source));
    SOVDEV_TRY(req.images->resolve(req.info.arch));
  }

  // The header needs the manifest, which needs the payload's hashes: compress to a temporary
  // file first, then write header, manifest and payload into the final file. The temporary
  // sits beside a regular output (same disk as the bundle); an output written in place (stdout,
  // a FIFO, a device) gets it in the temporary folder instead of a "-.payload" in the working
  // folder or a file in /dev.
  SOVDEV_ASSIGN(fs::OutputFile out, fs::OutputFile::create(req.out_path));
  const std::string payload_path =
      out.in_place() ? temporary_folder() + "/sovdev-build.payload" : req.out_path + ".payload";
  SOVDEV_ASSIGN(fs::OutputFile payload_file, fs::OutputFile::create(payload_path));
  uint64_t uncompressed_total = 0;
  for (const auto& o : ordered) uncompressed_total += o.json.size();
  uint64_t uncompressed_done = 0;
  SOVDEV_ASSIGN(auto writer, PayloadWriter::create(req.options, [&](std::string_view bytes) {
                  return payload_file.write(bytes);
                }));
  uint64_t last_report = 0;
  for (auto& o : ordered) {
    uncompressed_done += o.json.size();
    pb::ResourceRecord record = to_record(std::move(o));
    if (req.images) {
      SOVDEV_ASSIGN(auto pinned, req.images->pin(record.kind(), record.json()));
      if (pinned) record.set_json(std::move(*pinned));
    }
    SOVDEV_TRY(secrets.seal(record));
    SOVDEV_TRY(writer.add(record));
    if (req.progress && uncompressed_done - last_report >= (4u << 20)) {
      last_report = uncompressed_done;
      req.progress({"compressing", uncompressed_done, uncompressed_total});
    }
  }
  ordered.clear();
  SOVDEV_ASSIGN(PayloadSummary summary, writer.finish());

  BuildResult result;
  result.manifest = make_manifest(req.info, summary, req.options);
  result.secrets = secrets.summary();
  if (result.secrets.sealed > 0) {
    result.manifest.set_secrets_channel(result.secrets.channel);
    result.manifest.set_secrets_epoch(result.secrets.epoch);
    result.manifest.set_secrets_key_id(result.secrets.key_id);
    result.manifest.set_sealed_objects(result.secrets.sealed);
  }
  if (req.images) req.images->fill(result.manifest);
  SOVDEV_TRY(check_manifest_shape(result.manifest));
  SignedManifest signed_manifest = sign_manifest(result.manifest, req.keys);
  const std::string& envelope = signed_manifest.envelope;
  result.digest = signed_manifest.digest;

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
  if (req.env) {
    for (const auto& [name, value] : req.env->values) {
      if (std::find(used.begin(), used.end(), name) == used.end()) {
        result.unused_values.push_back(name);
      }
    }
  }
  if (req.progress) req.progress({"writing", result.file_size, result.file_size});
  return result;  // payload_file is dropped uncommitted: its temporary file is removed
}

}  // namespace sovdev::hub
