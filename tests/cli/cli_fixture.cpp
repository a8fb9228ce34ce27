#include "tests/cli/cli_fixture.hpp"

#include <algorithm>

#include <filesystem>
#include <stdexcept>

#include "bundles/bundle_file.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::testing {

Workspace::Workspace() {
  for (const char* name : {"root1", "pub1", "online1"}) {
    auto r = run({hub_binary(), "keygen", "--out", dir / "keys", "--name", name});
    if (r.exit_code != 0) throw std::runtime_error("keygen failed: " + r.err);
  }
  trust = dir / "trust.root";
  auto r = run({hub_binary(), "trust", "init", "--root", dir / "keys/root1.pub", "--targets",
                dir / "keys/pub1.pub", "--online", dir / "keys/online1.pub", "--sign", key("root1"),
                "--out", trust});
  if (r.exit_code != 0) throw std::runtime_error("trust init failed: " + r.err);
}

RunResult Workspace::build(const std::string& source, const std::string& out, uint64_t version,
                           const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {hub_binary(), "build",       source,
                                   "--stack",    "kp",          "--channel",
                                   "edge",       "--version",   std::to_string(version),
                                   "--arch",     "amd64,arm64", "--key",
                                   key("pub1"),  "--out",       out,
                                   "--quiet"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv);
}

RunResult Workspace::import(const std::string& file, const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {agent_binary(), "import", "--state", state(),
                                   "--trust",      trust,    file};
  argv.insert(argv.end(), extra.begin(), extra.end());
  // import needs the agent's channel; build() makes edge bundles.
  if (std::find(extra.begin(), extra.end(), "--channel") == extra.end()) {
    argv.insert(argv.end(), {"--channel", "edge"});
  }
  return run(argv);
}

RunResult Workspace::verify(const std::string& file) const {
  return run({agent_binary(), "verify", "--trust", trust, file});
}

void write_manifest(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_text(path, text);
}

std::vector<pb::ResourceRecord> unpack_bundle(const std::string& file,
                                              const std::string& trust_path) {
  auto check = [](const auto& expected, const char* what) {
    if (!expected) throw std::runtime_error(std::string(what) + ": " + expected.error().message);
  };
  auto policy = TrustPolicy::from_initial(read_text(trust_path));
  check(policy, "trust root");
  auto reader = fs::BundleFileReader::open(file);
  check(reader, "open bundle");
  auto manifest = policy->verify_manifest(reader->manifest_envelope(), nullptr);
  check(manifest, "manifest");
  std::string payload;
  for (int i = 0; i < manifest->chunk_sha256_size(); i++) {
    auto chunk = reader->next_chunk(*manifest);
    check(chunk, "chunk");
    payload.append(*chunk);
  }
  auto records = read_all_records(*manifest, payload);
  check(records, "records");
  return std::move(records).value();
}

RawBundle make_raw_bundle(const SecretKey& key, uint64_t version, int objects, size_t padding,
                          uint64_t declared_uncompressed) {
  RawBundle out;
  PayloadWriter::Options options;
  options.level = 3;
  auto writer = PayloadWriter::create(options, [&](std::string_view b) -> Status {
    out.payload.append(b);
    return {};
  });
  for (int i = 0; i < objects; i++) {
    pb::ResourceRecord r;
    r.set_api_version("v1");
    r.set_kind("ConfigMap");
    r.set_namespace_("default");
    r.set_name("cm-" + std::to_string(i));
    r.set_json("{\"data\":{\"x\":\"" + std::string(padding, 'x') + "\"}}");
    (void)writer->add(r);
  }
  auto summary = writer->finish();
  BundleInfo info{"kp", "edge", version, {"amd64", "arm64"}, "", "", 0};
  pb::BundleManifest m = make_manifest(info, *summary, options);
  if (declared_uncompressed) m.set_uncompressed_size(declared_uncompressed);
  auto signed_manifest = sign_manifest(m, {key});
  out.header_and_manifest =
      encode_bundle_header(static_cast<uint32_t>(signed_manifest.envelope.size())) +
      signed_manifest.envelope;
  return out;
}

}  // namespace sovdev::testing
