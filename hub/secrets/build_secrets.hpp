// The build's side of secrets sealed to each site (docs/design-secrets.md). Driven by
// hub/build.cpp in three steps:
//  - add_file() for each source file as it is read: finds the Secrets and their references,
//    refusing a reference out of place;
//  - prepare() once every file is read: refuses literal values in a stack folder, names every
//    reference with no value, and, only when some source names a secret, opens hub.db and the
//    secret-store key and takes the channel's current epoch key;
//  - seal() for each record on its way into the payload: a Secret with references leaves with
//    its data keys and empty values, its values sealed under the epoch key.
// Values from hub.db live in seal::SecretBytes only; nothing here logs or prints one.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/sealed_record.hpp"
#include "bundles/yaml/objects.hpp"
#include "common/error.hpp"
#include "hub/secrets/refs.hpp"
#include "sovdev.pb.h"

namespace sovdev::hub::secrets {

struct BuildSecretsOptions {
  std::string environment;       // whose values the references take
  std::string environment_flag;  // how the user names it: "--env" or "--secrets-env"
  bool stack = false;            // a stack folder: a literal Secret value is refused ...
  bool allow_plaintext = false;  // ... unless this is set
  std::string db_path;           // hub.db: needed only when a source names a secret
  std::string store_key;         // key file; empty: secrets::store_key_path's default
};

struct SealSummary {
  uint32_t sealed = 0;  // Secrets sealed
  std::string channel;
  uint64_t epoch = 0;
  std::string key_id;
  uint32_t plaintext = 0;             // Secrets left in the bundle with literal values
  std::vector<std::string> warnings;  // for stderr: nothing secret in them
};

class BuildSecrets {
 public:
  explicit BuildSecrets(BuildSecretsOptions options);
  ~BuildSecrets();
  BuildSecrets(const BuildSecrets&) = delete;
  BuildSecrets& operator=(const BuildSecrets&) = delete;

  // One source file, already parsed into `objects`.
  [[nodiscard]] Status add_file(std::string_view shown, std::string_view text,
                                const std::vector<yaml::Object>& objects);
  // After the last file. `stack`, `version` and `channel` are the bundle's.
  [[nodiscard]] Status prepare(const std::string& stack, uint64_t version,
                               const std::string& channel);
  // Seals `record` when it is a Secret with references; leaves any other record alone.
  [[nodiscard]] Status seal(pb::ResourceRecord& record);

  bool sealing() const { return epoch_key_ != nullptr; }
  const SealSummary& summary() const { return summary_; }

 private:
  struct Opened;
  Status open_store(const std::string& first_ref);
  Status check_literals() const;
  Status check_missing();
  Expected<seal::SecretBytes> resolve(const SecretDoc& doc, const SecretSite& site,
                                      std::string_view value);

  BuildSecretsOptions options_;
  std::map<std::string, SecretDoc> docs_;  // by object key (source, namespace, name)
  std::unique_ptr<Opened> opened_;
  const seal::SecretBytes* epoch_key_ = nullptr;
  sealed::Place place_;
  SealSummary summary_;
};

}  // namespace sovdev::hub::secrets
