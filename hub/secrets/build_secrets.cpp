#include "hub/secrets/build_secrets.hpp"

#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "hub/secrets/fleet_keys.hpp"
#include "hub/secrets/store_key.hpp"
#include "hub/secrets/values.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub::secrets {
namespace {

// One error naming every problem would be unreadable past a screenful.
constexpr size_t kMaxListed = 20;

std::string object_key(std::string_view source, std::string_view ns, std::string_view name) {
  std::string key(source);
  key += '\0';
  key += ns;
  key += '\0';
  key += name;
  return key;
}

bool is_secret(std::string_view api_version, std::string_view kind) {
  return api_version == "v1" && kind == "Secret";
}

std::string file_of(const SecretDoc& doc) {
  return doc.source.substr(0, doc.source.rfind(':'));
}

std::string at(const SecretDoc& doc, const SecretSite* site) {
  return site ? file_of(doc) + ":" + std::to_string(site->line) : doc.source;
}

std::string ref_text(const SecretRef& ref) {
  return "${secret:" + ref.name + "/" + ref.key + "}";
}

// The first kMaxListed lines, then how many more.
Error listed(Errc code, const std::string& head, const std::vector<std::string>& lines) {
  std::string message = head;
  for (size_t i = 0; i < lines.size() && i < kMaxListed; i++) message += "\n  " + lines[i];
  if (lines.size() > kMaxListed) {
    message += "\n  and " + std::to_string(lines.size() - kMaxListed) + " more";
  }
  return make_error(code, message);
}

void wipe_json(nlohmann::json& value) {
  if (value.is_string()) {
    sealed::wipe(value.get_ref<std::string&>());
  } else if (value.is_structured()) {
    for (auto& item : value) wipe_json(item);
  }
}

struct WipedJson {
  nlohmann::json value;
  ~WipedJson() { wipe_json(value); }
};

const SecretSite* find_site(const SecretDoc& doc, std::string_view field, std::string_view key) {
  for (const auto& s : doc.sites) {
    if (s.field == field && s.key == key) return &s;
  }
  return nullptr;
}

}  // namespace

struct BuildSecrets::Opened {
  store::Database db;
  StoreKey key;
  std::optional<EpochKey> epoch;
};

BuildSecrets::BuildSecrets(BuildSecretsOptions options) : options_(std::move(options)) {}
BuildSecrets::~BuildSecrets() = default;

Status BuildSecrets::add_file(std::string_view shown, std::string_view text,
                              const std::vector<yaml::Object>& objects) {
  bool any_secret = false;
  for (const auto& o : objects) any_secret = any_secret || is_secret(o.api_version, o.kind);
  if (!any_secret && !has_ref(text)) return {};
  SOVDEV_ASSIGN(std::vector<SecretDoc> docs, scan_file(shown, text));
  for (auto& doc : docs) {
    for (const auto& o : objects) {
      if (o.source == doc.source && o.name == doc.name && is_secret(o.api_version, o.kind)) {
        docs_.insert_or_assign(object_key(o.source, o.namespace_, o.name), std::move(doc));
        break;
      }
    }
  }
  return {};
}

Status BuildSecrets::check_literals() const {
  if (!options_.stack || options_.allow_plaintext) return {};
  std::vector<std::string> lines;
  for (const auto& [key, doc] : docs_) {
    for (const auto& s : doc.sites) {
      if (!s.literal) continue;
      const std::string name = check_name(doc.name).empty() ? doc.name : "NAME";
      lines.push_back(at(doc, &s) + ": Secret " + doc.name + ": " + s.field + "." + s.key +
                      " is a literal value: write ${secret:" + name + "/" + s.key +
                      "} and sovdev-hub secret set --env " + options_.environment + " " + name +
                      " " + s.key);
    }
  }
  if (lines.empty()) return {};
  return listed(Errc::invalid,
                "a stack's Secrets name their values in hub.db instead of holding them (or build "
                "with --allow-plaintext-secrets):",
                lines);
}

Status BuildSecrets::open_store(const std::string& first_ref) {
  const std::string why = " (the sources name secrets, first at " + first_ref + ")";
  if (options_.environment.empty()) {
    return make_error(Errc::usage, "name the environment whose secret values to use with " +
                                       options_.environment_flag + why);
  }
  if (const std::string bad = check_environment(options_.environment); !bad.empty()) {
    return make_error(Errc::usage, options_.environment_flag + ": " + bad);
  }
  if (options_.db_path.empty()) {
    return make_error(Errc::usage, "give the hub database with --db" + why);
  }
  // Opening would make an empty one, and every reference would then look unset.
  if (std::error_code ec; !std::filesystem::exists(options_.db_path, ec)) {
    return make_error(Errc::not_found, "no hub database " + options_.db_path +
                                           " (sovdev-hub secret set --db makes it)");
  }
  SOVDEV_ASSIGN(const std::string key_path, store_key_path(options_.store_key));
  SOVDEV_ASSIGN(StoreKey key, load_store_key(key_path));
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(options_.db_path));
  opened_ = std::make_unique<Opened>(Opened{std::move(db), std::move(key), std::nullopt});
  return {};
}

Status BuildSecrets::check_missing() {
  SecretValues values(opened_->db, opened_->key);
  SOVDEV_ASSIGN(const std::vector<ValueEntry> entries, values.list(options_.environment));
  std::set<std::pair<std::string, std::string>> have;
  for (const auto& e : entries) have.emplace(e.name, e.key);
  std::vector<std::string> lines;
  for (const auto& [key, doc] : docs_) {
    for (const auto& s : doc.sites) {
      for (const auto& ref : s.refs) {
        if (have.contains({ref.name, ref.key})) continue;
        lines.push_back(at(doc, &s) + ": " + ref_text(ref) + " has no value for environment " +
                        options_.environment + ": sovdev-hub secret set --env " +
                        options_.environment + " " + ref.name + " " + ref.key +
                        " (or secret generate)");
      }
    }
  }
  if (lines.empty()) return {};
  return listed(Errc::not_found,
                std::to_string(lines.size()) + " secret reference(s) have no value:", lines);
}

Status BuildSecrets::prepare(const std::string& stack, uint64_t version,
                             const std::string& channel) {
  SOVDEV_TRY(check_literals());
  std::string first_ref;
  for (const auto& [key, doc] : docs_) {
    bool literal = false;
    for (const auto& s : doc.sites) literal = literal || s.literal;
    if (!doc.has_refs()) {
      if (literal) summary_.plaintext++;
      continue;
    }
    for (const auto& s : doc.sites) {
      if (first_ref.empty() && !s.refs.empty()) first_ref = at(doc, &s);
    }
  }
  if (summary_.plaintext > 0) {
    summary_.warnings.push_back(
        std::to_string(summary_.plaintext) +
        " Secret(s) go into the bundle with their values in plaintext: write "
        "${secret:NAME/KEY} and set the values with sovdev-hub secret set");
  }
  if (first_ref.empty()) return {};
  SOVDEV_TRY(open_store(first_ref));
  SOVDEV_TRY(check_missing());
  FleetKeys fleet(opened_->db, opened_->key);
  SOVDEV_ASSIGN(opened_->epoch, fleet.current(channel));
  if (!opened_->epoch) {
    return make_error(Errc::not_found,
                      "channel " + channel +
                          " has no agents enrolled for secrets, so no epoch key to seal its "
                          "Secrets under: sovdev-hub agents add ID --pub FILE --channel " +
                          channel);
  }
  SOVDEV_ASSIGN(const std::vector<EpochInfo> epochs, fleet.epochs(channel));
  for (const auto& e : epochs) {
    if (e.epoch == opened_->epoch->epoch && e.grants == 0) {
      summary_.warnings.push_back("epoch " + std::to_string(e.epoch) + " of channel " + channel +
                                  " is granted to no agent (the last one was removed): nobody "
                                  "can open this bundle's Secrets until sovdev-hub agents add "
                                  "ID --pub FILE --channel " +
                                  channel);
    }
  }
  epoch_key_ = &opened_->epoch->key;
  place_ = {stack, version, channel, opened_->epoch->epoch};
  summary_.channel = channel;
  summary_.epoch = opened_->epoch->epoch;
  summary_.key_id = opened_->epoch->key_id;
  return {};
}

Expected<seal::SecretBytes> BuildSecrets::resolve(const SecretDoc& doc, const SecretSite& site,
                                                  std::string_view value) {
  if (!has_ref(value)) {
    if (site.field == "stringData") return seal::SecretBytes::copy_of(value);
    // data holds base64: the sealed object holds the raw bytes, as for references.
    seal::SecretBytes raw(value.size() / 4 * 3 + 3);
    size_t size = 0;
    if (sodium_base642bin(raw.data(), raw.size(), value.data(), value.size(), nullptr, &size,
                          nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
      return make_error(Errc::invalid,
                        at(doc, &site) + ": data." + site.key + " is not base64 (use stringData)");
    }
    return seal::SecretBytes::copy_of(raw.view().substr(0, size));
  }
  SOVDEV_ASSIGN(const std::vector<ValuePiece> pieces, split_value(value));
  SecretValues values(opened_->db, opened_->key);
  std::vector<seal::SecretBytes> parts;
  size_t total = 0;
  for (const auto& p : pieces) {
    if (p.is_ref) {
      auto got = values.get(options_.environment, p.ref.name, p.ref.key);
      if (!got) {
        return make_error(got.error().code,
                          at(doc, &site) + ": " + ref_text(p.ref) + ": " + got.error().message);
      }
      parts.push_back(std::move(*got));
    } else {
      parts.push_back(seal::SecretBytes::copy_of(p.text));
    }
    total += parts.back().size();
  }
  seal::SecretBytes out(total);
  size_t used = 0;
  for (const auto& part : parts) {
    std::copy(part.data(), part.data() + part.size(), out.data() + used);
    used += part.size();
  }
  return out;
}

Status BuildSecrets::seal(pb::ResourceRecord& record) {
  auto it = is_secret(record.api_version(), record.kind())
                ? docs_.find(object_key(record.source(), record.namespace_(), record.name()))
                : docs_.end();
  if (it == docs_.end() || !it->second.has_refs()) {
    // The scan found every reference in the text; one that appears only once YAML escapes are
    // decoded ("\u0024{secret:...}") is still out of place.
    if (has_ref(record.json())) {
      return make_error(Errc::invalid, record.source() +
                                           ": secret references are allowed only in a Secret's "
                                           "data or stringData");
    }
    return {};
  }
  if (epoch_key_ == nullptr) return make_error(Errc::internal, "no epoch key to seal with");
  const SecretDoc& doc = it->second;
  WipedJson object{nlohmann::json::parse(record.json(), nullptr, false)};
  if (!object.value.is_object()) return make_error(Errc::internal, doc.source + ": not an object");
  std::map<std::string, seal::SecretBytes> values;
  for (const char* field : {"data", "stringData"}) {  // stringData wins, as in Kubernetes
    auto found = object.value.find(field);
    if (found == object.value.end() || found->is_null()) continue;
    if (!found->is_object()) {
      return make_error(Errc::invalid, doc.source + ": " + field + " must be a map");
    }
    for (auto& [key, value] : found->items()) {
      const SecretSite* site = find_site(doc, field, key);
      const std::string where = at(doc, site) + ": " + field + "." + key;
      if (const std::string bad = check_key(key); !bad.empty()) {
        return make_error(Errc::invalid, where + ": " + bad);
      }
      if (!value.is_string() || site == nullptr) {
        return make_error(Errc::invalid, where + " must be a string");
      }
      SOVDEV_ASSIGN(values[key], resolve(doc, *site, value.get_ref<const std::string&>()));
    }
  }
  seal::SecretBytes data = sealed::data_object(values);
  if (data.size() > sealed::kMaxSealedData) {
    return make_error(Errc::too_large, doc.source + ": Secret " + doc.name + " holds more than " +
                                           std::to_string(sealed::kMaxSealedData) +
                                           " bytes of values");
  }
  nlohmann::json keys = nlohmann::json::object();
  for (const auto& [key, value] : values) keys[key] = "";
  wipe_json(object.value["data"]);
  object.value["data"] = std::move(keys);
  if (object.value.contains("stringData")) {
    wipe_json(object.value["stringData"]);
    object.value.erase("stringData");
  }
  sealed::wipe(*record.mutable_json());
  record.set_json(object.value.dump());
  sealed::seal_record(record, data, *epoch_key_, place_);
  summary_.sealed++;
  return {};
}

}  // namespace sovdev::hub::secrets
