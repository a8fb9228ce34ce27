#include "platform/target/dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <optional>
#include <set>

#include "bundles/hash.hpp"
#include "common/hex.hpp"
#include "platform/fs/files.hpp"
#include "platform/target/dir_inventory.hpp"

namespace sovdev::target {
namespace {

constexpr size_t kMaxBaseName = 63;  // an RFC 1123 label's length, so the Addon name fits anywhere
constexpr size_t kHashDigits = 12;
constexpr size_t kCompareChunk = 64 * 1024;

// [a-z0-9] kept (upper case lowered); any run of other characters becomes one '-', and none is
// left at either end.
std::string label_of(std::string_view s) {
  std::string out;
  bool dash = false;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      if (dash && !out.empty()) out += '-';
      dash = false;
      out += c;
    } else {
      dash = true;
    }
  }
  return out;
}

std::string_view group_of(std::string_view api_version) {
  const auto slash = api_version.find('/');
  return slash == std::string_view::npos ? std::string_view() : api_version.substr(0, slash);
}

// The manifest rules for stack names; they also keep the inventory's name inside the folder.
bool valid_stack(std::string_view s) {
  if (s.empty() || s.size() > 63 || s == "." || s == "..") return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

std::string describe(const pb::ResourceRecord& o) {
  std::string out = o.kind() + " ";
  if (!o.namespace_().empty()) out += o.namespace_() + "/";
  out += o.name();
  if (!o.source().empty()) out += " (" + o.source() + ")";
  return out;
}

// Whether the file at `path` holds exactly `content`, read in pieces. A link in its place is
// refused: the agent never makes one, and following it would compare (and tell apart) a file
// outside the folder.
Expected<bool> same_content(const std::string& path, std::string_view content) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return fs::errno_error("stat", path, errno);
  }
  if (S_ISLNK(st.st_mode)) {
    return make_error(Errc::io, path +
                                    " is a symbolic link, not a file the agent wrote: refusing "
                                    "to follow it out of the folder (remove it)");
  }
  if (!S_ISREG(st.st_mode)) return make_error(Errc::io, path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) != content.size()) return false;
  SOVDEV_ASSIGN(fs::InputFile in, fs::InputFile::open(path, fs::Links::refuse));
  for (;;) {
    SOVDEV_ASSIGN(std::string_view piece, in.read(kCompareChunk));
    if (piece.empty()) return content.empty();
    if (content.substr(0, piece.size()) != piece) return false;
    content.remove_prefix(piece.size());
  }
}

// Dotfile temps (".NAME.tmp-N", fs::OutputFile's naming) of this stack's files that a crash
// left behind. k3s ignores them, but they would pile up.
void remove_stale_temps(const std::string& dir, std::string_view stack) {
  const std::string objects = "." + label_of(stack) + ".";
  const std::string inventory = "." + inventory_path("", stack).substr(1) + ".tmp-";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    const bool object_temp = name.substr(0, objects.size()) == objects &&
                             name.find(".json.tmp-") != std::string_view::npos;
    const bool inventory_temp = name.substr(0, inventory.size()) == inventory;
    if (object_temp || inventory_temp) ::unlink((dir + "/" + std::string(name)).c_str());
  }
  ::closedir(d);
}

class DirTarget final : public Target {
 public:
  DirTarget(std::string dir, DirOptions options)
      : dir_(std::move(dir)), options_(std::move(options)) {}

  Status begin(const ApplyBegin& version) override;
  Status apply(const pb::ResourceRecord& object) override;
  Expected<ApplyResult> commit() override;
  void abort() override;

 private:
  std::string path_of(const std::string& name) const { return dir_ + "/" + name; }
  std::string what() const {
    return "apply " + current_->stack + "@" + std::to_string(current_->version) + " to " + dir_;
  }
  int64_t now() const {
    return options_.now ? options_.now() : static_cast<int64_t>(std::time(nullptr));
  }
  Expected<ApplyResult> prune_and_record();

  std::string dir_;
  DirOptions options_;
  std::optional<ApplyBegin> current_;
  std::string inventory_;
  Inventory previous_;          // what the inventory lists, pending entries included
  std::set<std::string> seen_;  // the files of this version's objects, as they stream by
  ApplyResult result_;
};

Status DirTarget::begin(const ApplyBegin& version) {
  if (current_) {
    return make_error(Errc::internal, "begin " + version.stack + " while " + what() +
                                          " is still open: commit or abort it first");
  }
  if (!valid_stack(version.stack)) {
    return make_error(Errc::invalid, "bad stack name '" + version.stack + "' for the dir target");
  }
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return make_error(Errc::io, "apply folder " + dir_ +
                                    " does not exist: on k3s or RKE2 it appears on server "
                                    "nodes once the server has started; or fix apply.dir");
  }
  remove_stale_temps(dir_, version.stack);
  inventory_ = inventory_path(dir_, version.stack);
  SOVDEV_ASSIGN(InventoryFile file, read_inventory(inventory_));
  if (file.torn) {
    // Appends must start on a fresh line.
    SOVDEV_TRY(write_inventory(inventory_, "rewritten after an interrupted apply", file.entries));
  }
  previous_ = std::move(file.entries);
  seen_.clear();
  result_ = {};
  current_ = version;
  return {};
}

Status DirTarget::apply(const pb::ResourceRecord& object) {
  if (!current_) return make_error(Errc::internal, "apply " + describe(object) + " before begin");
  if (object.json().empty()) {
    return make_error(Errc::invalid, what() + ": " + describe(object) + " has no JSON");
  }
  const std::string name = object_file_name(current_->stack, object);
  if (!seen_.insert(name).second) {
    return make_error(Errc::conflict,
                      what() + ": " + describe(object) + " appears twice (file " + name + ")");
  }
  if (previous_.find(name) == previous_.end()) {
    SOVDEV_TRY(append_pending(inventory_, name));
    previous_[name] = {FileState::pending, 0};
  }
  const std::string path = path_of(name);
  SOVDEV_ASSIGN(bool same, same_content(path, object.json()));
  if (same) {
    ++result_.unchanged;
    return {};
  }
  // 0600: a bundle may carry Secrets.
  auto written = fs::write_file_atomic(path, object.json(), 0600);
  if (!written) return std::move(written).error().context(what() + ": " + describe(object));
  result_.add_changed(object_name(object));
  return {};
}

Expected<ApplyResult> DirTarget::commit() {
  if (!current_) return make_error(Errc::internal, "commit before begin");
  auto result = prune_and_record();
  abort();  // the apply is over either way; on failure the inventory on disk still has it all
  return result;
}

Expected<ApplyResult> DirTarget::prune_and_record() {
  const int64_t now_s = now();
  Inventory next;
  bool removed = false;
  for (const auto& [name, entry] : previous_) {
    if (seen_.count(name) != 0) {
      next[name] = {FileState::live, 0};
      continue;
    }
    const std::string path = path_of(name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // already gone: forget it
      return fs::errno_error("stat", path, errno).context(what());
    }
    if (!S_ISREG(st.st_mode)) continue;  // not a file we wrote any more: leave it alone
    if (st.st_size == 0 && entry.state == FileState::emptied &&
        now_s - entry.emptied_at >= options_.prune_grace.count()) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return fs::errno_error("remove", path, errno).context(what());
      }
      removed = true;
      continue;
    }
    if (st.st_size == 0 && entry.state == FileState::emptied) {
      next[name] = entry;  // k3s may not have seen it empty yet
      continue;
    }
    // k3s #1971: removing a file leaves its objects running; an empty file makes k3s delete
    // them. Anything of ours not yet seen empty is (re)written empty and the clock restarts.
    if (st.st_size != 0) {
      auto emptied = fs::write_file_atomic(path, "", 0600);
      if (!emptied) return std::move(emptied).error().context(what() + ": prune " + name);
      ++result_.pruned;
    }
    if (options_.prune_grace.count() <= 0) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return fs::errno_error("remove", path, errno).context(what());
      }
      removed = true;
      continue;
    }
    next[name] = {FileState::emptied, now_s};
  }
  SOVDEV_TRY(write_inventory(inventory_,
                             "committed: " + current_->stack + " version " +
                                 std::to_string(current_->version) + " digest " +
                                 current_->digest_hex,
                             next));
  if (removed) {
    // The inventory already forgets the removed files; make their removal as durable.
    const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  return result_;
}

// The folder keeps the previous version's files plus whichever of this version's were already
// written; every one of those is in the inventory (live or pending), so the next successful
// commit, of this version or any other, prunes what does not belong and the folder is whole.
void DirTarget::abort() {
  current_.reset();
  previous_.clear();
  seen_.clear();
  result_ = {};
}

}  // namespace

std::string object_file_name(std::string_view stack, const pb::ResourceRecord& object) {
  std::string prefix;
  for (std::string_view part :
       {stack, std::string_view(object.kind()), std::string_view(object.namespace_()),
        std::string_view(object.name())}) {
    const std::string label = label_of(part);
    if (label.empty()) continue;
    if (!prefix.empty()) prefix += '.';
    prefix += label;
  }
  std::string identity(stack);
  for (std::string_view part :
       {group_of(object.api_version()), std::string_view(object.kind()),
        std::string_view(object.namespace_()), std::string_view(object.name())}) {
    identity += '\0';
    identity.append(part);
  }
  const std::string hash = to_hex(sha256(identity)).substr(0, kHashDigits);
  const size_t room = kMaxBaseName - 1 - kHashDigits;
  if (prefix.size() > room) prefix.resize(room);
  while (!prefix.empty() && (prefix.back() == '-' || prefix.back() == '.')) prefix.pop_back();
  return (prefix.empty() ? hash : prefix + "-" + hash) + ".json";
}

std::unique_ptr<Target> make_dir_target(const std::string& dir, DirOptions options) {
  return std::make_unique<DirTarget>(dir, std::move(options));
}

}  // namespace sovdev::target
