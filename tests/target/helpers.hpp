// Shared by the dir target tests: records, a folder listing, file identities.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "platform/target/dir.hpp"
#include "tests/support/process.hpp"

namespace sovdev::target::test {

inline pb::ResourceRecord record(const std::string& api_version, const std::string& kind,
                                 const std::string& ns, const std::string& name,
                                 const std::string& extra = "") {
  pb::ResourceRecord r;
  r.set_api_version(api_version);
  r.set_kind(kind);
  r.set_namespace_(ns);
  r.set_name(name);
  std::string json = "{\"apiVersion\":\"" + api_version + "\",\"kind\":\"" + kind +
                     "\",\"metadata\":{\"name\":\"" + name + "\"";
  if (!ns.empty()) json += ",\"namespace\":\"" + ns + "\"";
  json += "}" + extra + "}";
  r.set_json(json);
  return r;
}

inline pb::ResourceRecord config_map(const std::string& name, const std::string& data = "v") {
  return record("v1", "ConfigMap", "default", name, ",\"data\":{\"k\":\"" + data + "\"}");
}

// Every entry of the folder, dotfiles included: name → content.
inline std::map<std::string, std::string> folder(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out[e.path().filename().string()] = sovdev::testing::read_text(e.path().string());
  }
  return out;
}

inline std::vector<std::string> dotfiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [name, content] : folder(dir)) {
    if (name[0] == '.') out.push_back(name);
  }
  return out;
}

// Inode and modification time: a file rewritten through a temp and a rename changes both.
struct Identity {
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  bool operator==(const Identity& o) const { return inode == o.inode && mtime_ns == o.mtime_ns; }
};

inline Identity identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_ino, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

inline ApplyResult apply_all(Target& target, const std::string& stack, uint64_t version,
                             const std::vector<pb::ResourceRecord>& objects) {
  auto began = target.begin({stack, version, "digest" + std::to_string(version), {}});
  if (!began) FAIL(began.error().message);
  for (const auto& o : objects) {
    auto applied = target.apply(o);
    if (!applied) FAIL(applied.error().message);
  }
  auto committed = target.commit();
  if (!committed) FAIL(committed.error().message);
  return *committed;
}

}  // namespace sovdev::target::test
