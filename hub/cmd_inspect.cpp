#include <cstdio>
#include <nlohmann/json.hpp>

#include "bundles/bundle_file.hpp"
#include "bundles/hash.hpp"
#include "bundles/trust.hpp"
#include "bundles/verify.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"
#include "hub/commands.hpp"
#include "platform/fs/bundle_reader.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub {
namespace {

using nlohmann::json;

struct InspectOptions {
  std::string file;
  std::string trust;
  bool as_json = false;
  bool objects = false;
};

json signatures_json(const pb::Signed& env) {
  json sigs = json::array();
  for (const auto& s : env.signatures()) sigs.push_back(to_hex(s.key_id()));
  return sigs;
}

json manifest_json(const pb::BundleManifest& m, const std::string& digest) {
  json arch = json::array();
  for (const auto& a : m.arch()) arch.push_back(a);
  json out{{"type", "bundle"},
           {"stack", m.stack()},
           {"channel", m.channel()},
           {"version", m.version()},
           {"arch", arch},
           {"environment", m.environment()},
           {"source_revision", m.source_revision()},
           {"created_at", utc_time(m.created_at())},
           {"digest", to_hex(digest)},
           {"resources", m.resource_count()},
           {"payload_size", m.payload_size()},
           {"uncompressed_size", m.uncompressed_size()},
           {"chunk_size", m.chunk_size()},
           {"chunks", m.chunk_sha256_size()},
           {"payload_sha256", to_hex(m.payload_sha256())},
           {"window_log", m.window_log()}};
  if (m.sealed_objects() > 0) {
    out["secrets_channel"] = m.secrets_channel();
    out["secrets_epoch"] = m.secrets_epoch();
    out["secrets_key_id"] = to_hex(m.secrets_key_id());
    out["sealed_objects"] = m.sealed_objects();
  }
  if (m.images_size() > 0) {
    // What each arch's agent fetches: its blobs and their sizes, layers and wire form.
    json images = json::array();
    for (const auto& image : m.images()) {
      images.push_back({{"reference", image.reference()}, {"pinned", image.pinned()}});
    }
    out["images"] = images;
    json per_arch = json::object();
    for (const auto& a : m.arch()) {
      uint64_t blobs = 0, bytes = 0, wire = 0;
      for (const auto& b : m.image_blobs()) {
        if (!b.arch().empty() && b.arch() != a) continue;
        blobs++;
        bytes += b.size();
        wire += b.wire_size();
      }
      per_arch[a] = {{"blobs", blobs}, {"bytes", bytes}, {"wire_bytes", wire}};
    }
    out["image_blobs"] = per_arch;
  }
  return out;
}

// A sealed Secret shows the names of its keys; its ciphertext is only counted.
json object_json(const pb::ResourceRecord& r) {
  json out{{"apiVersion", r.api_version()}, {"kind", r.kind()},
           {"namespace", r.namespace_()},   {"name", r.name()},
           {"bytes", r.json().size()},      {"source", r.source()}};
  if (r.sealed().empty()) return out;
  json keys = json::array();
  const json object = json::parse(r.json(), nullptr, false);
  if (object.is_object() && object.contains("data") && object["data"].is_object()) {
    for (const auto& [key, value] : object["data"].items()) keys.push_back(key);
  }
  out["sealed_keys"] = std::move(keys);
  out["sealed_bytes"] = r.sealed().size();
  return out;
}

Expected<json> inspect_bundle(const InspectOptions& o) {
  SOVDEV_ASSIGN(fs::BundleFileReader reader, fs::BundleFileReader::open(o.file));
  SOVDEV_ASSIGN(pb::Signed env,
                parse_signed(reader.manifest_envelope(), kTypeManifest, kMaxManifestBytes));
  pb::BundleManifest manifest;
  std::string digest;
  bool verified = false;
  if (!o.trust.empty()) {
    SOVDEV_ASSIGN(std::string root, fs::read_file(o.trust, kMaxTrustRootBytes));
    SOVDEV_ASSIGN(TrustPolicy policy, TrustPolicy::from_initial(root));
    SOVDEV_ASSIGN(manifest, policy.verify_manifest(env, &digest));
    verified = true;
  } else {
    if (!manifest.ParseFromString(env.body())) {
      return make_error(Errc::invalid, "bundle manifest body is not a valid BundleManifest");
    }
    SOVDEV_TRY(check_manifest_shape(manifest));
    digest = sha256(env.body());
  }
  json out = manifest_json(manifest, digest);
  out["signatures"] = signatures_json(env);
  out["signatures_verified"] = verified;
  if (!o.objects) return out;

  // Listing objects means decoding the payload, which checks every chunk hash on the way.
  SOVDEV_TRY(reader.check_size(manifest));
  json objects = json::array();
  SOVDEV_ASSIGN(auto verifier,
                PayloadVerifier::create(manifest, [&](pb::ResourceRecord& r) -> Status {
                  objects.push_back(object_json(r));
                  return {};
                }));
  for (uint32_t i = 0; i < chunk_count(manifest); i++) {
    SOVDEV_ASSIGN(std::string_view chunk, reader.next_chunk(manifest));
    SOVDEV_TRY(verifier.add_chunk(i, chunk));
  }
  SOVDEV_TRY(verifier.finish());
  out["objects"] = std::move(objects);
  return out;
}

Expected<json> inspect_signed(const InspectOptions& o) {
  SOVDEV_ASSIGN(std::string bytes, fs::read_file(o.file, kMaxTrustRootBytes));
  pb::Signed env;
  if (!env.ParseFromString(bytes) || env.type().empty()) {
    return make_error(Errc::invalid,
                      o.file + " is neither a bundle file nor a signed sovdev object");
  }
  if (env.type() == kTypeTrustRoot) {
    SOVDEV_ASSIGN(TrustPolicy policy, TrustPolicy::from_initial(bytes));
    const auto& r = policy.root();
    json keys = json::array();
    for (const auto& k : r.keys()) {
      json roles = json::array();
      auto holds = [&](const pb::Role& role) {
        for (const auto& id : role.key_ids())
          if (id == k.key_id()) return true;
        return false;
      };
      if (holds(r.root())) roles.push_back("root");
      if (holds(r.publisher())) roles.push_back("publisher");
      if (holds(r.targets())) roles.push_back("targets");
      if (holds(r.online())) roles.push_back("online");
      keys.push_back({{"name", k.name()}, {"key_id", to_hex(k.key_id())}, {"roles", roles}});
    }
    json out{{"type", "trust-root"},
             {"version", r.version()},
             {"schema", r.schema()},
             {"created_at", utc_time(r.created_at())},
             {"root_threshold", r.root().threshold()},
             {"targets_threshold", policy.role(TrustRole::targets).threshold()},
             {"online_threshold", policy.role(TrustRole::online).threshold()},
             {"keys", keys},
             {"signatures", signatures_json(env)},
             {"signatures_verified", true}};
    if (policy.legacy()) {
      out["legacy"] =
          "schema 1 root: its publisher keys hold both the targets and the online role (the hub's "
          "key can sign bundles); rotate to targets and online keys with sovdev-hub trust rotate";
    }
    return out;
  }
  if (env.type() == kTypeCatalog) {
    pb::Catalog c;
    if (!c.ParseFromString(env.body()))
      return make_error(Errc::invalid, "catalog body is malformed");
    json entries = json::array();
    for (const auto& e : c.entries()) {
      entries.push_back({{"stack", e.stack()},
                         {"version", e.version()},
                         {"digest", to_hex(e.manifest_digest())},
                         {"payload_size", e.payload_size()}});
    }
    return json{{"type", "catalog"},    {"channel", c.channel()},
                {"serial", c.serial()}, {"expires_at", utc_time(c.expires_at())},
                {"entries", entries},   {"signatures", signatures_json(env)}};
  }
  return make_error(Errc::invalid, "unknown signed object type '" + env.type() + "'");
}

void print_human(const json& j) {
  for (const auto& [key, value] : j.items()) {
    if (key == "objects") {
      std::printf("objects (%zu, in apply order):\n", value.size());
      for (const auto& o : value) {
        const std::string ns = o["namespace"].get<std::string>();
        std::string sealed;
        if (o.contains("sealed_keys")) {
          for (const auto& k : o["sealed_keys"]) {
            sealed += (sealed.empty() ? "  (sealed: " : ", ") + k.get<std::string>();
          }
          sealed += sealed.empty() ? "  (sealed)" : ")";
        }
        std::printf("  %-40s %-28s %s%s%s\n", o["apiVersion"].get<std::string>().c_str(),
                    o["kind"].get<std::string>().c_str(), ns.empty() ? "" : (ns + "/").c_str(),
                    o["name"].get<std::string>().c_str(), sealed.c_str());
      }
    } else if (key == "images") {
      std::printf("images (%zu):\n", value.size());
      for (const auto& i : value) {
        std::printf("  %s -> %s\n", i["reference"].get<std::string>().c_str(),
                    i["pinned"].get<std::string>().c_str());
      }
    } else if (key == "image_blobs") {
      for (const auto& [arch, b] : value.items()) {
        std::printf("%-20s %s: %s blobs, %s bytes (%s on the wire)\n", "image blobs", arch.c_str(),
                    b["blobs"].dump().c_str(), b["bytes"].dump().c_str(),
                    b["wire_bytes"].dump().c_str());
      }
    } else if (value.is_string()) {
      std::printf("%-20s %s\n", key.c_str(), value.get<std::string>().c_str());
    } else {
      std::printf("%-20s %s\n", key.c_str(), value.dump().c_str());
    }
  }
}

Status inspect(const InspectOptions& o) {
  SOVDEV_ASSIGN(fs::InputFile in, fs::InputFile::open(o.file));
  SOVDEV_ASSIGN(std::string_view head, in.read(kBundleMagic.size()));
  const bool is_bundle = head.substr(0, 7) == kBundleMagic.substr(0, 7);
  SOVDEV_ASSIGN(json out, is_bundle ? inspect_bundle(o) : inspect_signed(o));
  if (o.as_json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    print_human(out);
  }
  return {};
}

}  // namespace

void add_inspect(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "Show what a bundle file, trust root or catalog holds");
  cmd->add_option("file", o->file, "Bundle (.sdb), trust root or catalog file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--trust", o->trust, "Verify the bundle's signatures against this trust root")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--objects", o->objects, "List the objects (decodes and checks the whole payload)");
  cmd->add_flag("--json", o->as_json, "Machine-readable output");
  commands.push_back({cmd, [o] { return inspect(*o); }});
}

}  // namespace sovdev::hub
