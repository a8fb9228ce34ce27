#include <cstdio>

#include "bundles/hash.hpp"
#include "bundles/keys.hpp"
#include "hub/commands.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub {
namespace {

struct KeygenOptions {
  std::string out_dir;
  std::string name;
};

Status keygen(const KeygenOptions& o) {
  // Two files, one of them secret: nothing of it belongs on stdout, and a folder named "-" is
  // surely not what was meant.
  if (o.out_dir == "-") {
    return make_error(Errc::usage,
                      "keygen writes two files (NAME.key and NAME.pub) into a folder: give the "
                      "folder with --out, not - (stdout)");
  }
  SOVDEV_TRY(fs::make_dirs(o.out_dir, 0700));
  const SecretKey key = generate_key(o.name);
  const std::string secret_path = o.out_dir + "/" + o.name + ".key";
  const std::string public_path = o.out_dir + "/" + o.name + ".pub";
  SOVDEV_TRY(fs::write_file_exclusive(secret_path, encode_secret_key(key), 0600));
  SOVDEV_TRY(
      fs::write_file_exclusive(public_path, encode_public_key({key.name, key.public_key()}), 0644));
  std::printf(
      "key %s (id %s)\n  secret: %s (mode 0600; root and targets keys stay offline, only "
      "online keys go on the hub)\n"
      "  public: %s\n",
      o.name.c_str(), short_hex(key_id(key.public_key())).c_str(), secret_path.c_str(),
      public_path.c_str());
  return {};
}

}  // namespace

void add_keygen(CLI::App& app, cli::Commands& commands) {
  auto options = std::make_shared<KeygenOptions>();
  auto* cmd =
      app.add_subcommand("keygen", "Create an Ed25519 key pair: NAME.key (0600) and NAME.pub");
  cmd->add_option("--out", options->out_dir, "Folder to write the key files into")->required();
  cmd->add_option("--name", options->name, "Key name (letters, digits, - _ .)")
      ->required()
      ->check([](const std::string& v) {
        for (char c : v) {
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
            return std::string("key names use letters, digits, '-', '_' and '.'");
          }
        }
        return v.empty() || v.size() > 64 ? std::string("1 to 64 characters") : std::string();
      });
  commands.push_back({cmd, [options] { return keygen(*options); }});
}

}  // namespace sovdev::hub
