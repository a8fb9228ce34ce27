// `sovdev-hub secret`: the secret values kept sealed in hub.db (docs/design-secrets.md).
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/text.hpp"
#include "hub/commands.hpp"
#include "hub/secrets/values.hpp"
#include "platform/fs/files.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {
namespace {

using secrets::SecretValues;

struct SecretOptions {
  std::string db, store_key, environment, name, key, from_file, charset = "alnum";
  size_t length = 32;
  bool as_json = false;
};

struct Opened {
  store::Database db;
  secrets::StoreKey key;
};

Expected<Opened> open(const SecretOptions& o) {
  SOVDEV_ASSIGN(const std::string path, secrets::store_key_path(o.store_key));
  SOVDEV_ASSIGN(secrets::StoreKey key, secrets::load_store_key(path));
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  return Opened{std::move(db), std::move(key)};
}

// At most kMaxValueBytes from stdin; one trailing newline (what `echo` adds) is dropped.
Expected<seal::SecretBytes> read_stdin() {
  seal::SecretBytes buffer(secrets::kMaxValueBytes + 2);
  size_t used = 0;
  while (used < buffer.size()) {
    const ssize_t n = ::read(0, buffer.data() + used, buffer.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fs::errno_error("read the value from", "stdin", errno);
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > 0 && buffer.data()[used - 1] == '\n') used--;
  if (used > secrets::kMaxValueBytes) {
    return make_error(Errc::too_large, "a secret value is at most " +
                                           std::to_string(secrets::kMaxValueBytes) + " bytes");
  }
  return seal::SecretBytes::copy_of(buffer.view().substr(0, used));
}

Expected<seal::SecretBytes> read_value(const SecretOptions& o) {
  if (o.from_file.empty()) {
    if (::isatty(0)) {
      return make_error(Errc::usage,
                        "give the value on stdin (e.g. `printf %s \"$VALUE\" | sovdev-hub secret "
                        "set ...`) or with --from-file; it is never taken from the command line");
    }
    return read_stdin();
  }
  SOVDEV_ASSIGN(std::string text, fs::read_file(o.from_file, secrets::kMaxValueBytes));
  auto value = seal::SecretBytes::copy_of(text);
  sodium_memzero(text.data(), text.size());
  return value;
}

std::string_view charset_of(const std::string& name) {
  if (name == "alnum") return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (name == "hex") return "0123456789abcdef";
  if (name == "base64url") {
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  }
  // RFC 3986's unreserved characters: safe in a URL's userinfo
  // (postgresql://app:${secret:pg/password}@db), in YAML and in shell words without escaping.
  // '?', '[', ']', '{', '}', '|', '^', '<', '>', ';', '!', '*' are not.
  if (name == "safe-symbols") {
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
  }
  return {};
}

// `length` characters drawn uniformly from the charset (randombytes_uniform: no modulo bias).
seal::SecretBytes generate(std::string_view charset, size_t length) {
  seal::SecretBytes out(length);
  for (size_t i = 0; i < length; i++) {
    out.data()[i] = static_cast<unsigned char>(
        charset[randombytes_uniform(static_cast<uint32_t>(charset.size()))]);
  }
  return out;
}

Status set_value(const SecretOptions& o, const seal::SecretBytes& value, const char* verb) {
  SOVDEV_ASSIGN(Opened opened, open(o));
  SecretValues values(opened.db, opened.key);
  SOVDEV_TRY(values.set(o.environment, o.name, o.key, value, std::time(nullptr)));
  std::printf("%s %s/%s/%s (%zu bytes; the value is not shown)\n", verb, o.environment.c_str(),
              o.name.c_str(), o.key.c_str(), value.size());
  return {};
}

Status list(const SecretOptions& o) {
  // Read-only: a listing never creates or changes hub.db (a mistyped --db is an error).
  SOVDEV_ASSIGN(store::Database db, store::open_hub_reader(o.db));
  // Listing opens nothing: the store key is not needed.
  SOVDEV_ASSIGN(const std::vector<secrets::ValueEntry> entries,
                SecretValues(db, secrets::StoreKey{}).list(o.environment));
  if (o.as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries) {
      out.push_back({{"environment", e.environment},
                     {"name", e.name},
                     {"key", e.key},
                     {"bytes", e.size},
                     {"updated", utc_time(e.updated_at)}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return {};
  }
  if (entries.empty()) std::printf("no secret values%s\n", o.environment.empty() ? "" : " here");
  for (const auto& e : entries) {
    std::printf("%-10s %-28s %-24s %6llu bytes  %s\n", e.environment.c_str(), e.name.c_str(),
                e.key.c_str(), static_cast<unsigned long long>(e.size),
                utc_time(e.updated_at).c_str());
  }
  return {};
}

Status remove(const SecretOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const uint64_t removed,
                SecretValues(db, secrets::StoreKey{}).remove(o.environment, o.name, o.key));
  if (removed == 0) {
    return make_error(Errc::not_found, "no secret value " + o.environment + "/" + o.name +
                                           (o.key.empty() ? "" : "/" + o.key));
  }
  std::printf("removed %llu value(s) of %s/%s\n", static_cast<unsigned long long>(removed),
              o.environment.c_str(), o.name.c_str());
  return {};
}

CLI::Validator valid(std::string (*check)(std::string_view)) {
  return CLI::Validator([check](std::string& v) { return check(v); }, "", "");
}

}  // namespace

void add_secret(CLI::App& app, cli::Commands& commands) {
  auto* secret = app.add_subcommand(
      "secret", "Secret values, sealed in hub.db under the secret-store key (never shown)");
  secret->require_subcommand(1);
  const auto common = [](CLI::App* cmd, SecretOptions& o, bool needs_key) {
    cmd->add_option("--db", o.db, "Hub database")->required();
    if (needs_key) {
      cmd->add_option("--store-key", o.store_key,
                      "Secret-store key file (0600; default $CREDENTIALS_DIRECTORY/"
                      "secret-store.key under systemd)");
    }
  };
  const auto place = [](CLI::App* cmd, SecretOptions& o) {
    cmd->add_option("--env", o.environment, "Environment (dev, staging, prod, edge ...)")
        ->required()
        ->check(valid(secrets::check_environment));
    cmd->add_option("name", o.name, "Secret name (the Kubernetes Secret's)")
        ->required()
        ->check(valid(secrets::check_name));
  };

  auto init_o = std::make_shared<SecretOptions>();
  auto* init = secret->add_subcommand("init", "Create the secret-store key file (0600)");
  init->add_option("--store-key", init_o->store_key, "Key file to create")->required();
  commands.push_back({init, [init_o]() -> Status {
                        SOVDEV_TRY(secrets::create_store_key(init_o->store_key));
                        std::printf(
                            "secret-store key %s (mode 0600): keep it with the targets "
                            "keys, off the serving hub\n",
                            init_o->store_key.c_str());
                        return {};
                      }});

  auto set_o = std::make_shared<SecretOptions>();
  auto* set = secret->add_subcommand(
      "set", "Set one value, read from stdin (one trailing newline dropped) or --from-file");
  common(set, *set_o, true);
  place(set, *set_o);
  set->add_option("key", set_o->key, "Key inside the Secret")
      ->required()
      ->check(valid(secrets::check_key));
  set->add_option("--from-file", set_o->from_file, "Read the value from this file, as it is");
  commands.push_back({set, [set_o]() -> Status {
                        SOVDEV_ASSIGN(const seal::SecretBytes value, read_value(*set_o));
                        return set_value(*set_o, value, "set");
                      }});

  auto gen_o = std::make_shared<SecretOptions>();
  auto* gen = secret->add_subcommand("generate", "Set one value to random characters");
  common(gen, *gen_o, true);
  place(gen, *gen_o);
  gen->add_option("key", gen_o->key, "Key inside the Secret")
      ->required()
      ->check(valid(secrets::check_key));
  gen->add_option("--length", gen_o->length, "Characters (default 32)")->check(CLI::Range(8, 4096));
  gen->add_option("--charset", gen_o->charset,
                  "alnum (default), hex, base64url or safe-symbols (A-Z a-z 0-9 and - . _ ~: "
                  "RFC 3986 unreserved, URL-, YAML- and shell-safe)")
      ->check(CLI::IsMember({"alnum", "hex", "base64url", "safe-symbols"}));
  commands.push_back({gen, [gen_o]() -> Status {
                        const auto value = generate(charset_of(gen_o->charset), gen_o->length);
                        return set_value(*gen_o, value, "generated");
                      }});

  auto list_o = std::make_shared<SecretOptions>();
  auto* ls = secret->add_subcommand("list", "Names, keys, sizes and dates; never values");
  common(ls, *list_o, false);
  ls->add_option("--env", list_o->environment, "Only this environment")
      ->check(valid(secrets::check_environment));
  ls->add_flag("--json", list_o->as_json, "Print JSON");
  commands.push_back({ls, [list_o] { return list(*list_o); }});

  auto rm_o = std::make_shared<SecretOptions>();
  auto* rm = secret->add_subcommand("rm", "Remove one key of a secret, or all its keys");
  common(rm, *rm_o, false);
  place(rm, *rm_o);
  rm->add_option("key", rm_o->key, "Key inside the Secret (default: every key)")
      ->check(valid(secrets::check_key));
  commands.push_back({rm, [rm_o] { return remove(*rm_o); }});
}

}  // namespace sovdev::hub
