#include "hub/secrets/values.hpp"

#include <algorithm>

namespace sovdev::hub::secrets {
namespace {

constexpr std::string_view kDomain = "sovdev/v1/secret-value";

std::string associated(const std::string& environment, const std::string& name,
                       const std::string& key) {
  return seal::associated_data(kDomain, {environment, name, key});
}

bool all_of(std::string_view s, bool (*ok)(char)) {
  return std::all_of(s.begin(), s.end(), ok);
}

bool lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

}  // namespace

std::string check_environment(std::string_view environment) {
  if (environment.empty() || environment.size() > 63 ||
      !all_of(environment, [](char c) { return lower_alnum(c) || c == '-'; })) {
    return "an environment is 1-63 of a-z, 0-9 and '-'";
  }
  return {};
}

std::string check_name(std::string_view name) {
  if (name.empty() || name.size() > 253 ||
      !all_of(name, [](char c) { return lower_alnum(c) || c == '-' || c == '.'; }) ||
      !lower_alnum(name.front()) || !lower_alnum(name.back())) {
    return "a secret name is a Kubernetes object name: 1-253 of a-z, 0-9, '-' and '.', starting "
           "and ending with a letter or digit";
  }
  return {};
}

std::string check_key(std::string_view key) {
  if (key.empty() || key.size() > 253 || !all_of(key, [](char c) {
        return lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_';
      })) {
    return "a secret key is a Secret data key: 1-253 of a-z, A-Z, 0-9, '-', '.' and '_'";
  }
  return {};
}

Status SecretValues::set(const std::string& environment, const std::string& name,
                         const std::string& key, const seal::SecretBytes& value, int64_t now) {
  for (const auto& problem : {check_environment(environment), check_name(name), check_key(key)}) {
    if (!problem.empty()) return make_error(Errc::usage, problem);
  }
  if (value.size() > kMaxValueBytes) {
    return make_error(Errc::too_large, "a secret value is at most " +
                                           std::to_string(kMaxValueBytes) + " bytes, this one " +
                                           std::to_string(value.size()));
  }
  const std::string sealed =
      seal::encrypt(key_.key, value.view(), associated(environment, name, key));
  SOVDEV_ASSIGN(store::Statement put,
                db_.prepare("INSERT INTO secret_values (environment, name, key, sealed, "
                            "store_key_id, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (environment, name, key) DO UPDATE SET "
                            "sealed = excluded.sealed, store_key_id = excluded.store_key_id, "
                            "updated_at = excluded.updated_at"));
  SOVDEV_TRY(put.bind_all(environment, name, key, store::Blob{sealed}, store::Blob{key_.id}, now));
  return put.run();
}

Expected<seal::SecretBytes> SecretValues::get(const std::string& environment,
                                              const std::string& name, const std::string& key) {
  SOVDEV_ASSIGN(store::Statement get,
                db_.prepare("SELECT sealed, store_key_id FROM secret_values WHERE environment = "
                            "? AND name = ? AND key = ?"));
  SOVDEV_TRY(get.bind_all(environment, name, key));
  SOVDEV_ASSIGN(const bool found, get.step());
  const std::string where = environment + "/" + name + "/" + key;
  if (!found) {
    return make_error(Errc::not_found, "no secret value " + where +
                                           " (set it with `sovdev-hub secret set --env " +
                                           environment + " " + name + " " + key + "`)");
  }
  if (get.blob(1) != key_.id) {
    return make_error(Errc::signature, "secret value " + where +
                                           " was sealed with another secret-store key than the "
                                           "one given");
  }
  auto opened =
      seal::decrypt(key_.key, get.blob(0), associated(environment, name, key), kMaxValueBytes);
  if (!opened) return std::move(opened).error().context("secret value " + where);
  return opened;
}

Expected<std::vector<ValueEntry>> SecretValues::list(const std::string& environment) {
  SOVDEV_ASSIGN(store::Statement rows,
                db_.prepare("SELECT environment, name, key, updated_at, length(sealed) FROM "
                            "secret_values WHERE ?1 = '' OR environment = ?1 "
                            "ORDER BY environment, name, key"));
  SOVDEV_TRY(rows.bind(1, environment));
  std::vector<ValueEntry> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, rows.step());
    if (!row) break;
    const uint64_t sealed = rows.uint64(4);
    const uint64_t overhead = seal::kNonceSize + seal::kTagSize;
    out.push_back({rows.text(0), rows.text(1), rows.text(2), rows.int64(3),
                   sealed > overhead ? sealed - overhead : 0});
  }
  return out;
}

Expected<uint64_t> SecretValues::remove(const std::string& environment, const std::string& name,
                                        const std::string& key) {
  SOVDEV_ASSIGN(store::Statement del,
                db_.prepare("DELETE FROM secret_values WHERE environment = ? AND name = ? AND "
                            "(? = '' OR key = ?)"));
  SOVDEV_TRY(del.bind_all(environment, name, key, key));
  SOVDEV_TRY(del.run());
  return static_cast<uint64_t>(db_.changes());
}

}  // namespace sovdev::hub::secrets
