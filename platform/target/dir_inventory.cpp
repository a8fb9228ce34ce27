#include "platform/target/dir_inventory.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>

#include "platform/fs/files.hpp"

namespace sovdev::target {
namespace {

// An inventory lists a few hundred names; anything near this is not one.
constexpr size_t kMaxInventorySize = 16 * 1024 * 1024;

Status sync_folder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fs::errno_error("open folder", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return fs::errno_error("sync folder", dir, err);
  return {};
}

Error symlink_error(const std::string& path) {
  return make_error(Errc::io, path +
                                  " is a symbolic link: the agent never makes one, so someone "
                                  "planted it; refusing to follow it out of the folder (remove "
                                  "it)");
}

bool parse_entry(std::string_view line, std::string& name, InventoryEntry& entry) {
  const auto space = line.find(' ');
  if (space == std::string_view::npos) return false;
  const std::string_view state = line.substr(0, space);
  std::string_view rest = line.substr(space + 1);
  if (state == "live" || state == "pending") {
    entry.state = state == "live" ? FileState::live : FileState::pending;
  } else if (state == "emptied") {
    const auto second = rest.find(' ');
    if (second == std::string_view::npos) return false;
    const std::string_view when = rest.substr(second + 1);
    const auto [end, ec] =
        std::from_chars(when.data(), when.data() + when.size(), entry.emptied_at);
    if (ec != std::errc() || end != when.data() + when.size()) return false;
    entry.state = FileState::emptied;
    rest = rest.substr(0, second);
  } else {
    return false;
  }
  if (!is_object_file_name(rest)) return false;
  name = std::string(rest);
  return true;
}

}  // namespace

std::string inventory_path(const std::string& dir, std::string_view stack) {
  return dir + "/.sovdev-" + std::string(stack) + ".inventory";
}

bool is_object_file_name(std::string_view name) {
  constexpr std::string_view suffix = ".json";
  if (name.size() <= suffix.size() || name.size() > 255 || name.front() == '.') return false;
  if (name.substr(name.size() - suffix.size()) != suffix) return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

Expected<InventoryFile> read_inventory(const std::string& path) {
  InventoryFile out;
  // lstat, not stat: a planted link, even a dangling one, must not be read or appended through.
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return out;
    return fs::errno_error("stat", path, errno);
  }
  if (S_ISLNK(st.st_mode)) return symlink_error(path);
  SOVDEV_ASSIGN(std::string text, fs::read_file(path, kMaxInventorySize, fs::Links::refuse));
  std::string_view rest = text;
  for (size_t line_no = 1; !rest.empty(); ++line_no) {
    const auto eol = rest.find('\n');
    if (eol == std::string_view::npos) {
      // Entries end in a newline; a last line without one is an append a crash cut short. Its
      // file was never created: files are created only after their entry is synced.
      out.torn = true;
      break;
    }
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    std::string name;
    InventoryEntry entry;
    if (!parse_entry(line, name, entry)) {
      return make_error(Errc::invalid,
                        path + ":" + std::to_string(line_no) + ": unreadable entry '" +
                            std::string(line.substr(0, 80)) +
                            "': fix the line, or delete it to make the agent forget that file");
    }
    out.entries[name] = entry;
  }
  return out;
}

Status write_inventory(const std::string& path, std::string_view comment,
                       const Inventory& inventory) {
  std::string text =
      "# The files sovdev-agent wrote into this folder for one stack, so it can prune them.\n"
      "# Do not edit: a file missing here is never pruned.\n# ";
  text.append(comment);
  text += '\n';
  for (const auto& [name, entry] : inventory) {
    switch (entry.state) {
      case FileState::live: text += "live " + name + "\n"; break;
      case FileState::pending: text += "pending " + name + "\n"; break;
      case FileState::emptied:
        text += "emptied " + name + " " + std::to_string(entry.emptied_at) + "\n";
        break;
    }
  }
  return fs::write_file_atomic(path, text, 0600);
}

Status append_pending(const std::string& path, const std::string& name) {
  struct stat st {};
  const bool existed = ::lstat(path.c_str(), &st) == 0;
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == ELOOP) return symlink_error(path);
    return fs::errno_error("open", path, errno);
  }
  const std::string line = "pending " + name + "\n";
  const ssize_t n = ::write(fd, line.data(), line.size());
  int err = errno;
  Status result;
  if (n != static_cast<ssize_t>(line.size())) {
    result = fs::errno_error("append to", path, n < 0 ? err : EIO);
  } else if (::fsync(fd) != 0) {
    err = errno;
    result = fs::errno_error("sync", path, err);
  }
  ::close(fd);
  if (!result) return result;
  if (!existed) return sync_folder(std::filesystem::path(path).parent_path().string());
  return {};
}

}  // namespace sovdev::target
