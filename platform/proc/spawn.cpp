#include "platform/proc/spawn.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>

extern char** environ;

namespace sovdev::proc {
namespace {

constexpr std::array<std::string_view, 6> kPrivateNames = {
    "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"};

#if !(defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34)))
// Without posix_spawn_file_actions_addclosefrom_np (glibc < 2.34): mark every descriptor above
// 2 close-on-exec in this process, so the exec drops them. One opened by another thread after
// this and before the spawn without O_CLOEXEC still leaks; glibc 2.34+ has no such window.
int mark_close_on_exec() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return errno;
  const int own = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    int fd = -1;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (ec != std::errc() || end != name.data() + name.size() || fd <= 2 || fd == own) continue;
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
  ::closedir(d);
  return 0;
}
#endif

bool is_word_char(char c) {
  return c != ' ' && c != '\t' && c != '\n' && c != '=' && c != '\'' && c != '"' && c != ';' &&
         c != ',';
}

// A word of the command line that looks like a credential: long, letters and digits mixed, not
// a path. Flags, names ("sovdev-agent") and what a script echoes as prose stay readable.
bool looks_like_secret(std::string_view word) {
  if (word.size() < 16 || word.front() == '/' || word.front() == '.' || word.front() == '-') {
    return false;
  }
  const bool digit = word.find_first_of("0123456789") != std::string_view::npos;
  bool letter = false;
  for (const char c : word) letter = letter || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return digit && letter;
}

// The value of `--token=...`, `--password=...` and the like, whatever it looks like.
bool is_secret_flag(std::string_view arg) {
  const auto eq = arg.find('=');
  if (arg.substr(0, 1) != "-" || eq == std::string_view::npos) return false;
  std::string name(arg.substr(0, eq));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* hint : {"token", "password", "secret", "key", "auth", "credential"}) {
    if (name.find(hint) != std::string::npos) return true;
  }
  return false;
}

void hide(std::string& text, std::string_view word) {
  if (word.empty()) return;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 3)) {
    text.replace(at, word.size(), "***");
  }
}

}  // namespace

std::string hide_arguments(std::string text, const std::vector<std::string>& argv) {
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string_view arg = argv[i];
    if (is_secret_flag(arg)) {
      const std::string_view value = arg.substr(arg.find('=') + 1);
      if (value.size() >= 4) hide(text, value);  // shorter would hide ordinary words
    }
    for (size_t start = 0; start < arg.size();) {
      while (start < arg.size() && !is_word_char(arg[start])) ++start;
      size_t end = start;
      while (end < arg.size() && is_word_char(arg[end])) ++end;
      const std::string_view word = arg.substr(start, end - start);
      if (looks_like_secret(word)) hide(text, word);
      start = end;
    }
  }
  return text;
}

bool is_private_environment_name(std::string_view name) {
  return std::find(kPrivateNames.begin(), kPrivateNames.end(), name) != kPrivateNames.end();
}

std::vector<std::string> child_environment(
    char** env, const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> out;
  for (char** e = env; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry = *e;
    const std::string_view name = entry.substr(0, entry.find('='));
    if (is_private_environment_name(name)) continue;
    const bool replaced =
        std::any_of(set.begin(), set.end(), [&](const auto& kv) { return kv.first == name; });
    if (!replaced) out.emplace_back(entry);
  }
  for (const auto& [name, value] : set) {
    if (!is_private_environment_name(name)) out.push_back(name + "=" + value);
  }
  return out;
}

std::vector<std::string> child_environment(
    const std::vector<std::pair<std::string, std::string>>& set) {
  return child_environment(environ, set);
}

int close_other_descriptors(posix_spawn_file_actions_t* actions) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // close_range(3, ~0U) in the child, or /proc/self/fd walked there on older kernels.
  return ::posix_spawn_file_actions_addclosefrom_np(actions, 3);
#else
  (void)actions;
  return mark_close_on_exec();
#endif
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace sovdev::proc
